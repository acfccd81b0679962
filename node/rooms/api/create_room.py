"""``POST /_matrix/client/v3/createRoom`` (client-server API "Room creation",
``create_room.yaml``)."""

from __future__ import annotations

from typing import Any

from .common import V3


def register(router: Any, service: Any) -> None:
    async def create_room(req: Any) -> tuple[int, dict]:
        room_id = await service.create_room(req.user_id, req.json())
        return 200, {"room_id": room_id}

    router.add("POST", V3 + "/createRoom", create_room, rate_limited=True)
