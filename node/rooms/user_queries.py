"""The room queries about one user: memberships, shared rooms, state at a point of the
stream, invite state, history visibility (part of ``RoomService``).

Spec: client-server API "Room membership" (the user's rooms, forgotten rooms), "Stripped
state" (what an invitee sees), "Room History Visibility" (which events a user may see,
from the user's membership and the room's ``m.room.history_visibility`` over time).

``UserQueries`` is a mixin of ``RoomService``: it uses the service's database, caches
(``_joined``, ``_mem_timelines``, ``_hv_timelines`` and their generation counters), room
and event lookups and state store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from federation.errors import NotFound
from federation.events.model import Event

from . import store
from .client_format import strip_state_event
from .event_meta import meta
from .visibility import filter_visible

if TYPE_CHECKING:
    from collections import OrderedDict

    from .hooks import RoomHooks
    from .state_cache import RoomState
    from .state_store import StateStore

CREATE = ("m.room.create", "")
VIS_CACHE_SIZE = 50000
# Stripped state for invites (client-server API "Stripped state": recommended types).
STRIPPED_TYPES = (
    "m.room.create",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.encryption",
)


class UserQueries:
    """Memberships, shared rooms, state at a stream position, stripped state and history
    visibility (part of ``RoomService``)."""

    # What ``RoomService`` provides; declared for the type checker only.
    db: Any
    state_store: StateStore
    hooks: RoomHooks
    _joined: dict[str, set[str]]
    _membership_gen: int
    _vis_gen: int
    _mem_timelines: OrderedDict[tuple[str, str], list]
    _hv_timelines: dict[str, list]

    if TYPE_CHECKING:

        async def get_room(self, room_id: str) -> RoomState: ...

        async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]: ...

        def loaded_room(self, room_id: str) -> RoomState | None: ...

    # ==================================================================================
    # Users and memberships
    # ==================================================================================
    async def joined_room_ids(self, user_id: str) -> list[str]:
        joined = self._joined.get(user_id)
        if joined is None:
            gen = self._membership_gen
            rows = await self.db.run(store.current_memberships, user_id, ["join"])
            joined = {r[0] for r in rows}
            if gen == self._membership_gen:
                self._joined[user_id] = joined
        return sorted(joined)

    async def rooms_shared_with(self, user_id: str) -> set[str]:
        """User IDs joined to at least one room the user is joined to (the user too)."""
        users: set[str] = set()
        for room_id in await self.joined_room_ids(user_id):
            try:
                users |= (await self.get_room(room_id)).joined
            except NotFound:
                continue
        return users

    async def get_rooms_for_user(
        self, user_id: str, memberships: Sequence[str] | None = None
    ) -> list[tuple[str, str, Event]]:
        """(room_id, membership, member event) for the user's current memberships, without
        forgotten rooms.  ``memberships`` restricts to those values."""
        rows, forgotten = await self.db.run(_memberships_and_forgotten, user_id, memberships)
        evs = await self.get_events([r[2] for r in rows])
        return [
            (room_id, m, evs[eid])
            for room_id, m, eid in rows
            if eid in evs and room_id not in forgotten
        ]

    async def user_memberships_changed(
        self, user_id: str, since_stream: int
    ) -> list[tuple[str, str, Event]]:
        """The latest membership change per room of ``user_id`` after ``since_stream`` (and
        up to what is committed), in stream order: (room_id, membership, member event)."""
        return await self.db.run(store.memberships_changed, user_id, since_stream)

    async def forgotten_room_ids(self, user_id: str) -> set[str]:
        return await self.db.run(store.forgotten_room_ids, user_id)

    async def get_state_at(self, room_id: str, stream: int) -> dict[tuple[str, str], Event]:
        """The room state just after the last accepted event at or before ``stream`` (from
        its state group: the resolved state, whatever the shape of the room's DAG)."""
        ids = await self.state_store.state_ids_at_stream(room_id, stream)
        evs = await self.get_events(ids.values())
        return {k: evs[eid] for k, eid in ids.items() if eid in evs}

    async def stripped_state(self, room_id: str, extra: Sequence[Event] = ()) -> list[dict]:
        """Stripped state events for an invite (plus ``extra``, e.g. the invite itself)."""
        room = await self.get_room(room_id)
        hook = self.hooks.out_of_band_state
        if hook is not None and CREATE not in room.state:
            # A room known only through a remote invite/knock: the inviting server's
            # room state (node.federation.membership.out_of_band).
            found = await hook(room, list(extra))
            if found is not None:
                return found
        out = [
            strip_state_event(room.state[(t, "")]) for t in STRIPPED_TYPES if (t, "") in room.state
        ]
        out.extend(strip_state_event(ev) for ev in extra)
        return out

    async def filter_events_for_user(
        self, user_id: str, room_id: str, events: Sequence[Event]
    ) -> list[Event]:
        """The subset of ``events`` (from one room, with stream orderings) that the history
        visibility rules let ``user_id`` see."""
        if not events:
            return []
        mem, hv = await self.visibility_timelines(room_id, user_id)
        return filter_visible(events, user_id, mem, hv)

    async def visibility_timelines(
        self, room_id: str, user_id: str
    ) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """(the user's memberships, the room's history visibility values) as sorted
        (stream_ordering, value) lists of committed events -- cached in memory and kept up
        to date as events are persisted."""
        mem = self._mem_timelines.get((room_id, user_id))
        hv = self._hv_timelines.get(room_id)
        if mem is None or hv is None:
            gen = self._vis_gen
            mem_db, hv_db = await self.db.run(_visibility_timelines, room_id, user_id)
            if gen == self._vis_gen:
                self._mem_timelines[(room_id, user_id)] = mem = mem_db
                self._hv_timelines[room_id] = hv = hv_db
                if len(self._mem_timelines) > VIS_CACHE_SIZE:
                    self._mem_timelines.popitem(last=False)
            else:
                mem, hv = mem_db, hv_db
        else:
            self._mem_timelines.move_to_end((room_id, user_id))
        return list(mem), list(hv)

    def cached_visibility_timelines(
        self, room_id: str, user_id: str
    ) -> tuple[list[tuple[int, str]], list[tuple[int, str]]] | None:
        """``visibility_timelines`` if both are in memory, else None (no database read:
        for decisions made while formatting, e.g. ``erasure.ErasedSenders``)."""
        mem = self._mem_timelines.get((room_id, user_id))
        hv = self._hv_timelines.get(room_id)
        return None if mem is None or hv is None else (mem, hv)

    def joined_since(self, room_id: str, user_id: str) -> int | None:
        """The stream ordering of ``user_id``'s current join event if the room is in memory
        and they are joined, else None."""
        room = self.loaded_room(room_id)
        ev = None if room is None else room.state.get(("m.room.member", user_id))
        if ev is None or ev.membership != "join":
            return None
        return meta(ev).stream_ordering


def _memberships_and_forgotten(conn: Any, user_id: str, memberships: Sequence[str] | None):
    return (
        store.current_memberships(conn, user_id, memberships),
        store.forgotten_room_ids(conn, user_id),
    )


def _visibility_timelines(conn: Any, room_id: str, user_id: str):
    return (
        store.membership_timeline(conn, room_id, user_id),
        store.history_visibility_timeline(conn, room_id),
    )
