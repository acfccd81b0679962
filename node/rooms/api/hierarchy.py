"""``GET /_matrix/client/v1/rooms/{roomId}/hierarchy`` (client-server API "Spaces",
``space_hierarchy.yaml``)."""

from __future__ import annotations

from typing import Any

from ..hierarchy_ops import hierarchy
from .common import V1


def register(router: Any, service: Any) -> None:
    async def get_hierarchy(req: Any, roomId: str) -> tuple[int, dict]:
        return 200, await hierarchy(
            service,
            req.user_id,
            roomId,
            suggested_only=req.query_bool("suggested_only", False),
            limit=req.query_int("limit", None),
            max_depth=req.query_int("max_depth", None),
            from_token=req.query("from"),
        )

    router.add("GET", V1 + "/rooms/{roomId}/hierarchy", get_hierarchy, rate_limited=True)
