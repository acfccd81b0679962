"""Room state and timelines as ``/sync`` needs them (client-server API "Syncing", "Room
Summaries" in the sync response, "Lazy-loading room members", "Room History Visibility").

- ``state_at(room, pos)``: the state just after stream position ``pos``, computed by rewinding the
  (in-memory) current state over the keys that changed after ``pos`` -- only those keys touch
  the database;
- ``fetch_timeline``: the newest ``limit`` events of a stream range that pass the timeline
  filter and the history visibility rules, scanning backwards in batches;
- ``summary``: ``m.heroes`` and the joined/invited member counts.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from federation.events.model import Event
from node.rooms.event_meta import committed_stream, meta
from node.rooms.visibility import filter_visible

if TYPE_CHECKING:
    from node.rooms.service import RoomService

from . import queries

MEMBER = "m.room.member"
SCAN_BUDGET = 1000  # events looked at per room timeline at most
HEROES = 5


def stream_of(ev: Event) -> int | None:
    return meta(ev).stream_ordering


def stored_stream_of(ev: Event) -> int:
    """The stream ordering of an event known to be persisted: read back from the database,
    or kept by ``RecentEvents`` (which holds only events that have one)."""
    return committed_stream(ev)


class RecentEvents:
    """The last few persisted events of recently active rooms, in memory.

    Fed with every committed batch (the rooms area's persister hook, before the notifier
    wakes anyone), so a woken incremental sync finds the new events here without a database
    round trip.  Per room, the cache is complete above ``floor``: every accepted event with a
    higher stream ordering is in it.  A redaction drops the room's cache (the cached copy of
    the target would be stale); rooms fall out least-recently-used first.
    """

    def __init__(self, per_room: int = 32, max_rooms: int = 512) -> None:
        self.per_room = per_room
        self.max_rooms = max_rooms
        self._rooms: OrderedDict[str, tuple[int, deque[Event]]] = OrderedDict()

    def on_persisted(self, evs: Sequence[Event]) -> None:
        for ev in evs:
            so = stream_of(ev)
            if so is None or ev.rejected_reason is not None:
                continue
            room_id = ev.room_id
            if meta(ev).redacts_target is not None or ev.type == "m.room.redaction":
                self._rooms.pop(room_id, None)
                continue
            entry = self._rooms.get(room_id)
            if entry is None:
                entry = (so - 1, deque())
                self._rooms[room_id] = entry
                if len(self._rooms) > self.max_rooms:
                    self._rooms.popitem(last=False)
            else:
                self._rooms.move_to_end(room_id)
            floor, events = entry
            events.append(ev)
            if len(events) > self.per_room:
                dropped = events.popleft()
                self._rooms[room_id] = (stored_stream_of(dropped), events)

    def newest_first(self, room_id: str, lower: int, upper: int) -> list[Event] | None:
        """All events in (lower, upper], newest first, or None when not all are cached."""
        entry = self._rooms.get(room_id)
        if entry is None or lower < entry[0]:
            return None
        return [ev for ev in reversed(entry[1]) if lower < stored_stream_of(ev) <= upper]


@dataclass
class Timeline:
    events: list[Event] = field(default_factory=list)  # oldest first
    limited: bool = False
    prev_pos: int = 0  # position for prev_batch (just before the first event)
    raw: list[Event] = field(default_factory=list)  # every event fetched, newest first
    raw_covers_from: int | None = None  # raw holds *all* events in (this, upper]


class RoomStateReader:
    def __init__(self, db: Any, rooms: RoomService) -> None:
        self.db = db
        self.rooms = rooms
        self.recent = RecentEvents()

    async def current_state(self, room_id: str) -> dict[tuple[str, str], Event]:
        """The room's current state: the rooms area's live map (read only, not copied)."""
        return (await self.rooms.get_room(room_id)).state

    async def state_at(
        self, room_id: str, position: int, keys: Iterable[tuple[str, str]] | None = None
    ) -> dict[tuple[str, str], Event]:
        """State just after stream ``position`` (restricted to ``keys`` when given)."""
        current = await self.current_state(room_id)
        if keys is None:
            state = dict(current)
        else:
            state = {k: current[k] for k in set(keys) if k in current}
        # A key without a value now had none then either (state never disappears in a linear
        # room), so only keys whose current value came after ``position`` need a look back.
        stale = [k for k, ev in state.items() if ((so := stream_of(ev)) is None or so > position)]
        if not stale:
            return state
        ids = await self.db.run(queries.state_ids_at, room_id, stale, position)
        evs = await self.rooms.get_events(ids.values()) if ids else {}
        for k in stale:
            event_id = ids.get(k)
            ev = evs.get(event_id) if event_id else None
            if ev is None:
                state.pop(k, None)
            else:
                state[k] = ev
        return state

    async def state_at_timeline_start(
        self, room_id: str, tl: "Timeline", position: int
    ) -> dict[tuple[str, str], Event]:
        """The full state at the start of ``tl`` (``position``: just before its first
        event), for a full-state answer (initial sync, newly joined room).

        When nothing changed since ``position`` it is the current state.  Otherwise it is
        the state store's state before the first timeline event that has known state
        (state groups with a create event), whatever way its events were stored (a remote
        room's state from a ``send_join`` answer is stored as outliers, which the
        stream-ordering rewind does not see); state keys set by earlier timeline events
        (e.g. an invite received before the join) are left to the timeline.  Rooms without
        state groups use the rewind."""
        current = await self.current_state(room_id)
        if all((so := stream_of(ev)) is not None and so <= position for ev in current.values()):
            return dict(current)
        store = self.rooms.state_store
        if tl.events:
            groups = await store.get_event_groups([ev.event_id for ev in tl.events])
            for i, ev in enumerate(tl.events):
                if ev.event_id not in groups:
                    continue
                ids = dict(await store.get_state(groups[ev.event_id][0]))
                if ev.type != "m.room.create" and ("m.room.create", "") not in ids:
                    continue  # e.g. an invite from another server: state unknown here
                for earlier in tl.events[:i]:
                    if earlier.is_state:
                        ids.pop(earlier.key, None)
                evs = await self.rooms.get_events(ids.values())
                return {k: evs[eid] for k, eid in ids.items() if eid in evs}
        return await self.state_at(room_id, position)

    async def state_delta(self, room_id: str, lo: int, hi: int) -> list[Event]:
        """The latest state event per key among those in (lo, hi], in stream order."""
        if hi <= lo:
            return []
        ids = await self.db.run(queries.state_ids_between, room_id, lo, hi)
        if not ids:
            return []
        evs = await self.rooms.get_events(ids.values())
        out = [evs[i] for i in ids.values() if i in evs]
        out.sort(key=lambda e: stream_of(e) or 0)
        return out

    async def fetch_timeline(
        self,
        room_id: str,
        user_id: str,
        lower: int | None,
        upper: int,
        limit: int,
        allow: Callable[[Event], bool],
        visibility: tuple[Sequence, Sequence] | None,
    ) -> Timeline:
        """Newest ``limit`` events in (lower, upper] passing ``allow`` and, when
        ``visibility`` (membership and history timelines) is given, the visibility rules."""
        tl = Timeline(prev_pos=upper)
        picked: list[Event] = []
        cursor = upper
        batch = limit + 1 if visibility is None else max(limit + 1, 50)
        exhausted = False
        while True:
            if lower is not None and cursor <= lower:
                exhausted = True
                break
            cached = self.recent.newest_first(room_id, lower, cursor) if lower is not None else None
            if cached is not None:
                evs, exhausted = cached, True
            else:
                evs = await self.rooms.get_events_in_range(room_id, cursor, lower, batch, "b")
                exhausted = len(evs) < batch
            tl.raw.extend(evs)
            candidates = evs
            if visibility is not None and evs:
                candidates = filter_visible(
                    list(reversed(evs)), user_id, visibility[0], visibility[1]
                )
                candidates.reverse()
            for ev in candidates:
                if allow(ev):
                    picked.append(ev)
                    if len(picked) > limit:
                        break
            if len(picked) > limit:
                tl.limited = True
                break
            if exhausted:
                break
            if len(tl.raw) >= SCAN_BUDGET:
                tl.limited = True
                break
            cursor = stored_stream_of(evs[-1]) - 1
        # ``raw`` holds every event of (raw_covers_from, upper]: the batches are contiguous.
        if exhausted:
            tl.raw_covers_from = lower if lower is not None else 0
        elif tl.raw:
            tl.raw_covers_from = stored_stream_of(tl.raw[-1]) - 1
        tl.events = list(reversed(picked[:limit]))
        if tl.events:
            tl.prev_pos = stored_stream_of(tl.events[0]) - 1
        elif tl.limited:
            tl.prev_pos = cursor if not tl.raw else stored_stream_of(tl.raw[-1]) - 1
        return tl


def summary(state: dict[tuple[str, str], Event], user_id: str) -> dict:
    """``summary``: ``m.heroes`` (first 5 joined/invited members by stream ordering, never the
    user; else left/banned ones) and the joined/invited counts."""
    active: list[tuple[int, str]] = []
    inactive: list[tuple[int, str]] = []
    joined = invited = 0
    for (etype, skey), ev in state.items():
        if etype != MEMBER:
            continue
        membership = ev.content.get("membership")
        if membership == "join":
            joined += 1
        elif membership == "invite":
            invited += 1
        if skey == user_id:
            continue
        entry = (stream_of(ev) or 0, skey)
        if membership in ("join", "invite"):
            active.append(entry)
        elif membership in ("leave", "ban"):
            inactive.append(entry)
    pool = active or inactive
    pool.sort()
    return {
        "m.heroes": [uid for _, uid in pool[:HEROES]],
        "m.joined_member_count": joined,
        "m.invited_member_count": invited,
    }


def has_name(state: dict[tuple[str, str], Event]) -> bool:
    name = state.get(("m.room.name", ""))
    if name is not None and name.content.get("name"):
        return True
    alias = state.get(("m.room.canonical_alias", ""))
    return alias is not None and bool(alias.content.get("alias"))
