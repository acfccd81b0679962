"""``PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}`` as the resident server.

Spec: server-server API "Leaving Rooms (Rejecting Invites)" (``leaving-v2.yaml``): the
same validation as send_join with membership ``leave``; 200 with an empty object once the
event is in the room's graph (and sent on to the room's other servers).
"""

from __future__ import annotations

from typing import Any

from .resident import accept_membership


async def send_leave(ms: Any, origin: str, room_id: str, event_id: str, body: Any) -> dict:
    await accept_membership(ms, origin, room_id, event_id, body, "leave")
    return {}
