"""Which servers may read a room's events and state over federation.

Spec: server-server API "Retrieving events" / ``events.yaml`` (403 "The requesting host is
not in the room"), client-server API "Room History Visibility" > "Server behaviour" applied
to a server through its users: an event is visible to a server when

1. the history visibility at the event is ``world_readable``; or
2. ``shared`` and the server has a member in the room now; or
3. ``invited`` and one of the server's users was invited or joined at the event; or
4. ``joined`` and one of the server's users was joined at the event.

Room-level access (``require_room_access``): the server has a joined member in the room's
current state, or the room is ``world_readable``.  Events a server may not see are served
redacted (their place in the DAG stays known; their content does not leak).
"""

from __future__ import annotations

from typing import Any, Iterable

from federation.errors import Forbidden, NotFound
from federation.events.model import Event
from federation.events.redaction import redact
from node.rooms.erasure import server_was_joined
from node.rooms.event_meta import meta
from node.rooms.state_cache import RoomState

HV = ("m.room.history_visibility", "")
NOT_IN_ROOM = "This server is not in the room"


def server_of(user_id: str) -> str:
    return user_id.partition(":")[2]


def server_in_room(room: RoomState, server: str) -> bool:
    return any(server_of(u) == server for u in room.joined)


def history_visibility(room: RoomState) -> str:
    value = room.content("m.room.history_visibility").get("history_visibility")
    return value if isinstance(value, str) else "shared"


async def require_room_access(rooms: Any, room_id: str, origin: str) -> RoomState:
    """The room, if ``origin`` may read it; 403 otherwise (unknown rooms too)."""
    try:
        room = await rooms.get_room(room_id)
    except NotFound:
        raise Forbidden(NOT_IN_ROOM) from None
    if server_in_room(room, origin) or history_visibility(room) == "world_readable":
        return room
    raise Forbidden(NOT_IN_ROOM)


class ServerVisibility:
    """``visible(event)`` for one server, caching per state group (one request)."""

    def __init__(self, rooms: Any, room: RoomState, origin: str) -> None:
        self.rooms = rooms
        self.room = room
        self.origin = origin
        self.in_room = server_in_room(room, origin)
        self._by_group: dict[int, bool] = {}
        self._joined_at: dict[int, bool] = {}  # erasure position -> origin was joined

    async def visible(self, event: Event) -> bool:
        store = self.rooms.state_store
        groups = (await store.get_event_groups([event.event_id])).get(event.event_id)
        if groups is None:
            # No state known at the event (an outlier): as the room is now.
            return self.in_room or history_visibility(self.room) == "world_readable"
        group = groups[0]
        hit = self._by_group.get(group)
        if hit is None:
            hit = self._by_group[group] = await self._visible_at(await store.get_state(group))
        if (
            not hit
            and event.type == "m.room.member"
            and event.state_key is not None
            and server_of(event.state_key) == self.origin
        ):
            return True  # a server always sees its own users' membership changes
        return hit

    async def _visible_at(self, state: dict) -> bool:
        hv = "shared"
        hv_id = state.get(HV)
        if hv_id is not None:
            hv_ev = await self.rooms.get_event(hv_id)
            value = hv_ev.content.get("history_visibility") if hv_ev is not None else None
            hv = value if isinstance(value, str) else "shared"
        if hv == "world_readable":  # 1.
            return True
        if hv not in ("invited", "joined"):  # 2. shared
            return self.in_room
        member_ids = [
            eid
            for (etype, skey), eid in state.items()
            if etype == "m.room.member" and server_of(skey) == self.origin
        ]
        members = await self.rooms.get_events(member_ids)
        wanted = ("join", "invite") if hv == "invited" else ("join",)  # 3. / 4.
        return any(ev.content.get("membership") in wanted for ev in members.values())

    async def serve(self, events: Iterable[Event]) -> list[dict]:
        """The PDUs to send: visible events as stored, the others redacted (and an erased
        user's events to a server that joined after the erasure: ``node.rooms.erasure``)."""
        out = []
        for ev in events:
            pdu = dict(ev.pdu)
            if not await self.visible(ev) or await self._erased_for_origin(ev):
                pdu = redact(pdu, ev.room_version)
            out.append(pdu)
        return out

    async def _erased_for_origin(self, ev: Event) -> bool:
        erased_at = self.rooms.erasure.erased.get(ev.sender)
        if erased_at is None:
            return False
        stream = meta(ev).stream_ordering
        if stream is None or stream > erased_at:
            return True
        seen = self._joined_at.get(erased_at)
        if seen is None:
            seen = await server_was_joined(self.rooms, self.room.room_id, self.origin, erased_at)
            self._joined_at[erased_at] = seen
        return not seen
