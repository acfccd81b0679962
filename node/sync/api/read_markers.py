"""``POST /rooms/{roomId}/read_markers`` (client-server API "Read and unread markers",
``read_markers.yaml``): sets ``m.fully_read`` and optionally ``m.read``/``m.read.private``."""

from __future__ import annotations

from typing import Any

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def read_markers(req: Any, roomId: str) -> tuple[int, dict]:
        await service.set_read_markers(req.user_id, roomId, req.json())
        return 200, {}

    router.add("POST", V3 + "/rooms/{roomId}/read_markers", read_markers, rate_limited=True)
