"""``POST /_matrix/client/v3/rooms/{roomId}/upgrade`` (client-server API "Room Upgrades",
``room_upgrades.yaml``): ``{"new_version", "additional_creators"?}`` ->
``{"replacement_room"}``.  The work is ``node/rooms/upgrade.py``; an unknown room is
403 like any room the caller is not in."""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden, NotFound

from ..upgrade import upgrade_room
from .common import V3


def register(router: Any, service: Any) -> None:
    async def post_upgrade(req: Any, roomId: str) -> tuple[int, dict]:
        body = req.json()
        try:
            new_room_id = await upgrade_room(service, req.user_id, roomId, body)
        except NotFound:
            raise Forbidden("You cannot upgrade this room") from None
        return 200, {"replacement_room": new_room_id}

    router.add("POST", V3 + "/rooms/{roomId}/upgrade", post_upgrade, rate_limited=True)
