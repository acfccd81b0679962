"""``GET /_matrix/federation/v1/make_leave/{roomId}/{userId}`` as the resident server.

Spec: server-server API "Leaving Rooms (Rejecting Invites)" (``leaving-v1.yaml``
make_leave): an unsigned leave template on our current state; 403 when the user may not
leave (e.g. not in the room), 404 for a room this server is not in.
"""

from __future__ import annotations

from typing import Any

from .common import require_user_on, room_for_resident, template


async def make_leave(ms: Any, origin: str, room_id: str, user_id: str) -> dict:
    require_user_on(user_id, origin)
    room = await room_for_resident(ms.rooms, room_id)
    return template(ms.rooms, room, user_id, "leave")
