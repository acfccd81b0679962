"""``GET /notifications`` (client-server API "Listing Notifications", ``notifications.yaml``):
the caller's own notifications only; ``limit`` 1-100 (default 20), ``only=highlight``,
``from`` = an earlier ``next_token`` (400 ``M_INVALID_PARAM`` otherwise)."""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from ..listing import DEFAULT_LIMIT, MAX_LIMIT, list_notifications

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def get_notifications(req: Any) -> tuple[int, dict]:
        limit = req.query_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        if service.rooms is None:
            raise MatrixError("Notifications are not available", http_status=404)
        body = await list_notifications(
            service.db,
            service.rooms,
            service.counts,
            req.requester,
            req.query("from"),
            limit,
            req.query("only"),
        )
        return 200, body

    router.add("GET", V3 + "/notifications", get_notifications)
