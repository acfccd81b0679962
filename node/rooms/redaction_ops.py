"""Sending a redaction: client-server API "Redactions"
(https://spec.matrix.org/v1.16/client-server-api/#redactions) and
``PUT /rooms/{roomId}/redact/{eventId}/{txnId}``.

The sender must be joined and allowed to send ``m.room.redaction``; redacting someone
else's event also needs the ``redact`` power level.  Both are checked under the room's lock,
against the state the redaction is built on.  What a persisted redaction does to the
events in memory is ``RoomService._apply_redaction``.
"""

from __future__ import annotations

from typing import Callable, Protocol

from federation.auth.power_levels import event_send_level, named_level, user_power_level
from federation.errors import Forbidden, MatrixError, NotFound
from federation.events.model import Event

from .state_cache import RoomState


class _Rooms(Protocol):
    """What a redaction needs of ``RoomService``."""

    async def room_for_sender(self, room_id: str) -> RoomState: ...

    async def get_event(self, event_id: str) -> Event | None: ...

    async def create_event(
        self,
        room_id: str,
        sender: str,
        etype: str,
        content: dict,
        *,
        state_key: str | None = None,
        redacts: str | None = None,
        txn: tuple[str, str] | None = None,
        precheck: Callable[[RoomState], bool] | None = None,
    ) -> Event | None: ...


async def redact_event(
    rooms: _Rooms,
    user_id: str,
    room_id: str,
    target_id: str,
    content: dict | None = None,
    txn: tuple[str, str] | None = None,
) -> Event:
    """Send ``m.room.redaction`` for ``target_id``; 404 when it is not an event of the room."""
    room = await rooms.room_for_sender(room_id)
    target = await rooms.get_event(target_id)
    if target is None or target.room_id != room_id:
        raise NotFound("Event not found")
    content = dict(content or {})
    reason = content.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MatrixError("'reason' must be a string", errcode="M_BAD_JSON")

    def precheck(room: RoomState) -> bool:
        if room.membership(user_id) != "join":
            raise Forbidden("You are not in this room")
        level = user_power_level(user_id, room.state, room.room_version)
        if level < event_send_level("m.room.redaction", False, room.state):
            raise Forbidden("You do not have permission to send redactions in this room")
        if target.sender != user_id and level < named_level("redact", room.state):
            raise Forbidden("You do not have permission to redact other users' events")
        return True

    ev = await rooms.create_event(
        room.room_id,
        user_id,
        "m.room.redaction",
        content,
        redacts=target_id,
        txn=txn,
        precheck=precheck,
    )
    assert ev is not None
    return ev
