"""Who may read a room's state, members and history, and as of when.

Spec: client-server API ``rooms.yaml`` ("If the user has left the room then the state is
taken from the state of the room when they left"; 403 "You aren't a member of the room and
weren't previously a member of the room"), "Room History Visibility" (``world_readable``
rooms may be read by anyone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.errors import Forbidden, NotFound
from federation.events.model import Event

from . import store
from .state_cache import RoomState

NOT_MEMBER = "You aren't a member of the room and weren't previously a member of the room"


@dataclass
class RoomView:
    room: RoomState
    at: int | None  # None: the current state; else the stream of the user's leave

    async def state(self, service: Any) -> dict[tuple[str, str], Event]:
        if self.at is None:
            return dict(self.room.state)
        return await service.get_state_at(self.room.room_id, self.at)


async def _room(service: Any, room_id: str) -> RoomState:
    try:
        return await service.get_room(room_id)
    except NotFound:
        raise Forbidden(NOT_MEMBER) from None


def history_visibility(room: RoomState) -> str:
    value = room.content("m.room.history_visibility").get("history_visibility")
    return value if isinstance(value, str) else "shared"


async def room_view(service: Any, user_id: str, room_id: str) -> RoomView:
    """The view of ``room_id`` that ``user_id`` may read, or 403 (unknown rooms too: their
    existence does not leak)."""
    room = await _room(service, room_id)
    membership = room.membership(user_id)
    if membership == "join":
        return RoomView(room, None)
    if history_visibility(room) == "world_readable":
        return RoomView(room, None)
    if membership in ("leave", "ban"):
        timeline = await service.db.run(store.membership_timeline, room_id, user_id)
        if any(m == "join" for _, m in timeline):
            return RoomView(room, timeline[-1][0])
    raise Forbidden(NOT_MEMBER)


async def may_read_history(service: Any, user_id: str, room_id: str) -> RoomState:
    """Rooms whose events a user may page through: members (past or present, invitees
    included -- visibility rules then pick the events) and world-readable rooms."""
    room = await _room(service, room_id)
    if room.membership(user_id) is not None or history_visibility(room) == "world_readable":
        return room
    raise Forbidden("You aren't a member of the room")
