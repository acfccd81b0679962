"""The in-memory picture of one room: current state, forward extremities, depth, lock.

Spec: server-server API "Room State Resolution" / "PDUs" (prev_events are the forward
extremities, depth is one more than the deepest prev event); client-server API "Room
membership" (joined members).

A ``RoomState`` is loaded once from the database and then kept in step by the service,
which applies every event it creates *before* the event is persisted (under the room's
lock), so the next event in the room builds on it.  Rooms are independent: each has its
own lock, so event creation is linear within a room and concurrent across rooms.
"""

from __future__ import annotations

from typing import Iterator

from twisted.internet.defer import DeferredLock

from federation.events.model import Event
from federation.room_versions import RoomVersion

MEMBER = "m.room.member"


class RoomState:
    __slots__ = (
        "room_id",
        "room_version",
        "state",
        "extremities",
        "depth",
        "lock",
        "joined",
        "is_public",
        "room_type",
        "creator",
        "state_group",
        "members_version",
    )

    def __init__(
        self,
        room_id: str,
        room_version: RoomVersion,
        *,
        creator: str,
        is_public: bool = False,
        room_type: str | None = None,
    ) -> None:
        self.room_id = room_id
        self.room_version = room_version
        self.creator = creator
        self.is_public = is_public
        self.room_type = room_type
        self.state: dict[tuple[str, str], Event] = {}
        self.extremities: list[str] = []
        self.depth = 0
        self.lock = DeferredLock()
        self.joined: set[str] = set()
        # Bumped on every change of an m.room.member state event, so per-room caches of
        # what the members imply (servers to send to, whom push rules are evaluated for)
        # are recomputed on a membership change only, not for every event.
        self.members_version = 0
        # The state group holding ``state`` (node.rooms.state_store); None until the
        # room's first event, or for a room from before state groups existed.
        self.state_group: int | None = None

    # --- reading ---------------------------------------------------------------------
    def get(self, event_type: str, state_key: str = "") -> Event | None:
        return self.state.get((event_type, state_key))

    def membership(self, user_id: str) -> str | None:
        ev = self.state.get((MEMBER, user_id))
        return None if ev is None else ev.content.get("membership")

    def content(self, event_type: str, state_key: str = "") -> dict:
        ev = self.state.get((event_type, state_key))
        return dict(ev.content) if ev is not None else {}

    def members(self) -> Iterator[tuple[str, Event]]:
        for (etype, skey), ev in self.state.items():
            if etype == MEMBER:
                yield skey, ev

    # --- updating --------------------------------------------------------------------
    def set_state_event(self, event: Event) -> None:
        """Put a state event into the current state (loading, or after a redaction)."""
        self.state[event.key] = event
        if event.type == MEMBER:
            self.members_version += 1
            user_id = event.key[1]
            if event.content.get("membership") == "join":
                self.joined.add(user_id)
            else:
                self.joined.discard(user_id)

    def remove_state(self, key: tuple[str, str]) -> None:
        """Drop a key from the current state (state resolution may do that)."""
        event = self.state.pop(key, None)
        if event is not None and event.type == MEMBER:
            self.members_version += 1
            self.joined.discard(event.state_key)

    def apply(self, event: Event) -> None:
        """Advance the room past a newly created event (linear DAG: it is the only tip)."""
        if event.is_state:
            self.set_state_event(event)
        prev = set(event.prev_event_ids)
        self.extremities = [e for e in self.extremities if e not in prev] + [event.event_id]
        if event.depth > self.depth:
            self.depth = event.depth
