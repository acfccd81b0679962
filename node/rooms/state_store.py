"""State storage: the state before and after every event, as *state groups*.

Spec: server-server API "Room State Resolution" ("The *state* of a room is a map of
``(event_type, state_key)`` to ``event_id``"); "Checks performed on receipt of a PDU" (5.
"the state before the event"); ``/state`` and ``/state_ids`` ("The fully resolved state for
the room, prior to considering any state changes induced by the requested event").

A *state group* is a state map stored as a delta against a previous group (``prev``) or,
every ``MAX_CHAIN`` deltas, as a full snapshot; each non-outlier event maps to the group
before it and the group after it (``schema/federation.py``).  Groups are numbered here, in
memory (the node is the only writer), so the local hot path never waits for the database:

* a message event reuses the room's current group (before == after, one mapping row);
* a local state event adds a one-entry delta on top of the room's current group.

New groups and mappings travel with their event through the batching ``EventPersister``
(``sg_new``, ``sg`` and ``sg_current`` of ``node.rooms.event_meta``) and are written by
``write_state_rows`` inside the batch's transaction; until then they are served from
memory.  Reads materialise a group by walking its delta chain, from memory as far as
possible, else with one recursive query; recent materialised maps are cached.

Events persisted before state groups existed have no mapping; ``state_ids_before``/``after``
then fall back to the room's (then linear) history.

Public API (used by node/rooms, the federation endpoints and the membership handshakes):
  ``await get_state_ids_before(event_id)``, ``await get_state_ids_after(event_id)`` ->
  ``dict[(type, state_key), event_id]`` (``NotFound`` for an unknown event / outlier),
  ``await get_state(group)``, ``await get_event_groups(event_ids)``,
  ``await state_ids_at_stream(room_id, stream)``, and the builders ``assign_local``,
  ``new_group``/``new_group_async`` used when events are created or received.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import delete, func, insert, select, text

from federation.errors import NotFound
from federation.events.model import StateKey, StateMap
from node.storage.bulk import insert_rows
from schema.federation import (
    event_state_groups,
    room_state_groups,
    state_group_entries,
    state_groups,
)

from .event_meta import meta
from .group_record import Delta, GroupRecord

log = logging.getLogger("parta.federation.state")

MAX_CHAIN = 64  # deltas between snapshots
FULL_CACHE_SIZE = 32  # materialised state maps kept
RECORD_CACHE_SIZE = 20000  # committed group records (deltas) kept
EVENT_CACHE_SIZE = 50000  # event -> (before, after) kept


def diff_states(old: Mapping[StateKey, str], new: Mapping[StateKey, str]) -> Delta:
    """The delta that turns ``old`` into ``new`` (``None``: key removed)."""
    delta: Delta = {k: v for k, v in new.items() if old.get(k) != v}
    for k in old:
        if k not in new:
            delta[k] = None
    return delta


# --- SQL (database thread) ---------------------------------------------------------------


def _max_group_id(conn: Any) -> int:
    return conn.execute(select(func.max(state_groups.c.id))).scalar() or 0


_CHAIN_SQL = text("""
WITH RECURSIVE chain(id, prev, n) AS (
    SELECT id, prev_group, 0 FROM state_groups WHERE id = :g
    UNION ALL
    SELECT s.id, s.prev_group, c.n + 1 FROM state_groups s JOIN chain c ON s.id = c.prev
    WHERE c.n < 100000
)
SELECT c.n, e.type, e.state_key, e.event_id
FROM chain c JOIN state_group_entries e ON e.group_id = c.id
ORDER BY c.n DESC
""")


def load_group_state(conn: Any, group: int) -> StateMap | None:
    """The full state map of ``group`` (None if the group does not exist)."""
    if conn.execute(select(state_groups.c.id).where(state_groups.c.id == group)).first() is None:
        return None
    state: StateMap = {}
    for _n, etype, skey, event_id in conn.execute(_CHAIN_SQL, {"g": group}):
        if event_id is None:
            state.pop((etype, skey), None)
        else:
            state[(etype, skey)] = event_id
    return state


def _chain_len(conn: Any, group: int) -> int | None:
    return conn.execute(select(state_groups.c.chain_len).where(state_groups.c.id == group)).scalar()


def load_event_groups(conn: Any, event_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    out = {}
    ids = list(event_ids)
    for i in range(0, len(ids), 500):
        for r in conn.execute(
            select(event_state_groups).where(event_state_groups.c.event_id.in_(ids[i : i + 500]))
        ):
            out[r.event_id] = (r.before_group, r.after_group)
    return out


def room_group(conn: Any, room_id: str) -> tuple[int, int] | None:
    """(current state group, its chain length) of a room, or None."""
    row = conn.execute(
        select(room_state_groups.c.state_group, state_groups.c.chain_len)
        .select_from(
            room_state_groups.join(
                state_groups, state_groups.c.id == room_state_groups.c.state_group
            )
        )
        .where(room_state_groups.c.room_id == room_id)
    ).first()
    return (row.state_group, row.chain_len) if row is not None else None


def _linear_state_ids(conn: Any, event_id: str, inclusive: bool) -> StateMap | None:
    """State before/after an event from the linear history (events without groups)."""
    from schema.events import events

    row = conn.execute(
        select(events.c.room_id, events.c.stream_ordering, events.c.outlier).where(
            events.c.event_id == event_id
        )
    ).first()
    if row is None or row.outlier:
        return None
    so = events.c.stream_ordering
    q = (
        select(events.c.type, events.c.state_key, events.c.event_id)
        .where(
            events.c.room_id == row.room_id,
            events.c.state_key.is_not(None),
            events.c.rejected_reason.is_(None),
            events.c.outlier.is_(False),
            so <= row.stream_ordering if inclusive else so < row.stream_ordering,
        )
        .order_by(so.asc())
    )
    state: StateMap = {}
    for etype, skey, eid in conn.execute(q):
        state[(etype, skey)] = eid
    return state


def _last_event_at(conn: Any, room_id: str, stream: int) -> str | None:
    from schema.events import events

    return conn.execute(
        select(events.c.event_id)
        .where(
            events.c.room_id == room_id,
            events.c.stream_ordering <= stream,
            events.c.outlier.is_(False),
            events.c.rejected_reason.is_(None),
        )
        .order_by(events.c.stream_ordering.desc())
        .limit(1)
    ).scalar()


def write_state_rows(conn: Any, batch: Sequence[Any]) -> None:
    """Write the state groups, event mappings and current groups a batch carries
    (``meta(ev).sg_new``, ``.sg``, ``.sg_current``); part of the batch's
    transaction (``node.rooms.store_write.write_events``)."""
    group_rows: list[dict] = []
    entry_rows: list[dict] = []
    mapping_rows: list[tuple] = []
    current: dict[str, int] = {}
    for ev in batch:
        m = meta(ev)
        for rec in m.sg_new:
            group_rows.append(
                {
                    "id": rec.id,
                    "room_id": rec.room_id,
                    "prev_group": rec.prev,
                    "chain_len": rec.chain_len,
                    "event_id": rec.event_id,
                }
            )
            entry_rows += [
                {"group_id": rec.id, "type": k[0], "state_key": k[1], "event_id": v}
                for k, v in rec.delta.items()
            ]
        groups = m.sg
        if groups is not None:
            mapping_rows.append((ev.event_id, ev.room_id, groups[0], groups[1]))
        cur = m.sg_current
        if cur is not None:
            current[cur[0]] = cur[1]
    if group_rows:
        conn.execute(insert(state_groups), group_rows)
    if entry_rows:
        conn.execute(insert(state_group_entries), entry_rows)
    if mapping_rows:
        insert_rows(
            conn,
            "event_state_groups",
            ("event_id", "room_id", "before_group", "after_group"),
            mapping_rows,
        )
    if current:
        conn.execute(
            delete(room_state_groups).where(room_state_groups.c.room_id.in_(list(current)))
        )
        conn.execute(
            insert(room_state_groups),
            [{"room_id": r, "state_group": g} for r, g in current.items()],
        )


# --- the store ---------------------------------------------------------------------------


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)

    def hit(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


class StateStore:
    def __init__(self, db: Any, *, max_chain: int = MAX_CHAIN) -> None:
        self.db = db
        self.max_chain = max_chain
        self._next_id: int | None = None
        self._pending: dict[int, GroupRecord] = {}  # not yet committed
        self._records = _LRU(RECORD_CACHE_SIZE)  # committed, recently used
        self._full = _LRU(FULL_CACHE_SIZE)  # group -> StateMap (read-only)
        self._chains = _LRU(RECORD_CACHE_SIZE)  # group -> chain_len
        self._event_groups = _LRU(EVENT_CACHE_SIZE)  # event_id -> (before, after)
        self.groups_written = 0

    # --- start-up / persister hooks --------------------------------------------------------
    def start_sync(self) -> None:
        self._next_id = self.db.run_sync(_max_group_id) + 1

    async def start(self) -> None:
        if self._next_id is None:
            value = await self.db.run(_max_group_id) + 1
            if self._next_id is None:
                self._next_id = value

    def attach(self, persister: Any) -> None:
        """Follow the persister: groups leave ``_pending`` once their batch committed."""
        persister.on_committed.append(self._committed)
        persister.on_failed.append(self._failed)

    def _committed(self, evs: Sequence[Any]) -> None:
        for ev in evs:
            m = meta(ev)
            new, m.sg_new = m.sg_new, ()
            for rec in new:
                self._pending.pop(rec.id, None)
                self._records.put(rec.id, rec)
                self.groups_written += 1
            m.sg_current = None

    def _failed(self, evs: Sequence[Any]) -> None:
        for ev in evs:
            for rec in meta(ev).sg_new:
                self._pending.pop(rec.id, None)
                self._full.pop(rec.id, None)
            self._event_groups.pop(ev.event_id, None)

    def _allocate(self) -> int:
        if self._next_id is None:
            self.start_sync()
        gid = self._next_id
        assert gid is not None
        self._next_id = gid + 1
        return gid

    # --- building groups (reactor thread) ----------------------------------------------------
    def chain_len(self, group: int) -> int | None:
        rec = self._pending.get(group) or self._records.get(group)
        if rec is not None:
            return rec.chain_len
        return self._chains.get(group)

    def note_group(self, group: int, chain_len: int) -> None:
        """Remember a group's chain length (read with a room, so local sends need no query)."""
        self._chains.put(group, chain_len)

    def new_group(
        self,
        room_id: str,
        prev: int | None,
        delta: Delta,
        *,
        event_id: str | None = None,
        full: Callable[[], StateMap] | StateMap | None = None,
    ) -> GroupRecord:
        """A new group = ``prev`` + ``delta``; a snapshot when the chain would grow past
        ``max_chain``, when ``prev`` is None, or when ``prev``'s chain length is unknown
        (``full``, the complete new state, is then required)."""
        prev_chain = self.chain_len(prev) if prev is not None else None
        if prev is None or prev_chain is None or prev_chain + 1 > self.max_chain:
            if prev is not None:
                if full is None:
                    raise ValueError("a snapshot group needs the full state")
                state = full() if callable(full) else full
                rec = GroupRecord(
                    self._allocate(), room_id, None, 0, {k: v for k, v in state.items()}, event_id
                )
            else:
                rec = GroupRecord(
                    self._allocate(),
                    room_id,
                    None,
                    0,
                    {k: v for k, v in delta.items() if v is not None},
                    event_id,
                )
        else:
            rec = GroupRecord(
                self._allocate(), room_id, prev, prev_chain + 1, dict(delta), event_id
            )
        self._pending[rec.id] = rec
        return rec

    async def new_group_async(
        self, room_id: str, prev: int | None, delta: Delta, *, event_id: str | None = None
    ) -> GroupRecord:
        """``new_group`` for any ``prev``: reads its chain length / full state as needed."""
        if prev is not None and self.chain_len(prev) is None:
            n = await self.db.run(_chain_len, prev)
            if n is not None:
                self.note_group(prev, n)
        full = None
        prev_len = self.chain_len(prev) if prev is not None else None
        if prev is not None and (prev_len is None or prev_len + 1 > self.max_chain):
            base = dict(await self.get_state(prev))
            for k, v in delta.items():
                if v is None:
                    base.pop(k, None)
                else:
                    base[k] = v
            full = base
        return self.new_group(room_id, prev, delta, event_id=event_id, full=full)

    def set_event_groups(self, event_id: str, before: int, after: int) -> None:
        self._event_groups.put(event_id, (before, after))

    def assign_local(self, room: Any, ev: Any) -> None:
        """State groups for an event created locally on top of ``room``: call right
        *before* ``room.apply(ev)`` (the room's state is the state before the event).

        Sets ``meta(ev).sg`` (and for state events ``.sg_new``, ``.sg_current``)
        and advances ``room.state_group``: a message reuses the current group, a state
        event adds a one-entry delta."""
        before = room.state_group
        new: list[GroupRecord] = []
        if before is None:
            # First event of a room (or a room from before state groups): snapshot.
            rec = self.new_group(room.room_id, None, {k: e.event_id for k, e in room.state.items()})
            new.append(rec)
            before = rec.id
            room.state_group = before
            meta(ev).sg_current = (room.room_id, before)
        after = before
        if ev.is_state and ev.rejected_reason is None:

            def full() -> StateMap:
                state = {k: e.event_id for k, e in room.state.items()}
                state[ev.key] = ev.event_id
                return state

            rec = self.new_group(
                room.room_id, before, {ev.key: ev.event_id}, event_id=ev.event_id, full=full
            )
            new.append(rec)
            after = rec.id
            room.state_group = after
            meta(ev).sg_current = (room.room_id, after)
        m = meta(ev)
        if new:
            m.sg_new = new
        m.sg = (before, after)
        self.set_event_groups(ev.event_id, before, after)

    # --- reading -------------------------------------------------------------------------------
    async def get_state(self, group: int) -> StateMap:
        """The full state map of ``group`` (shared: do not mutate)."""
        cached = self._full.hit(group)
        if cached is not None:
            return cached
        chain: list[GroupRecord] = []
        base: StateMap | None = None
        g: int | None = group
        while g is not None:
            full = self._full.get(g)
            if full is not None:
                base = full
                break
            rec = self._pending.get(g) or self._records.get(g)
            if rec is None:
                break
            chain.append(rec)
            g = rec.prev
        if base is None:
            if g is None:
                base = {}
            else:
                loaded = await self.db.run(load_group_state, g)
                if loaded is None:
                    raise NotFound(f"State group {g} is unknown")
                base = loaded
                self._full.put(g, base)
        state = dict(base)
        for rec in reversed(chain):
            for k, v in rec.delta.items():
                if v is None:
                    state.pop(k, None)
                else:
                    state[k] = v
        self._full.put(group, state)
        return state

    def known_groups(self, event_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(before, after) of the events whose groups are in memory (no database)."""
        out = {}
        for eid in event_ids:
            hit = self._event_groups.get(eid)
            if hit is not None:
                out[eid] = hit
        return out

    async def get_event_groups(self, event_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """(before, after) groups of the events that have them."""
        out: dict[str, tuple[int, int]] = {}
        missing = []
        for eid in event_ids:
            hit = self._event_groups.hit(eid)
            if hit is not None:
                out[eid] = hit
            else:
                missing.append(eid)
        if missing:
            found = await self.db.run(load_event_groups, missing)
            for eid, groups in found.items():
                self._event_groups.put(eid, groups)
            out.update(found)
        return out

    async def _state_ids(self, event_id: str, after: bool) -> StateMap:
        groups = (await self.get_event_groups([event_id])).get(event_id)
        if groups is not None:
            return dict(await self.get_state(groups[1] if after else groups[0]))
        state = await self.db.run(_linear_state_ids, event_id, after)
        if state is None:
            raise NotFound(f"No state known at event {event_id}")
        return state

    async def get_state_ids_before(self, event_id: str) -> StateMap:
        """The state before ``event_id`` (``NotFound`` if unknown or an outlier)."""
        return await self._state_ids(event_id, False)

    async def get_state_ids_after(self, event_id: str) -> StateMap:
        """The state after ``event_id`` (before it for rejected events)."""
        return await self._state_ids(event_id, True)

    async def state_ids_at_stream(self, room_id: str, stream: int) -> StateMap:
        """The state after the last accepted event of ``room_id`` at or before ``stream``."""
        event_id = await self.db.run(_last_event_at, room_id, stream)
        if event_id is None:
            return {}
        return await self.get_state_ids_after(event_id)

    async def room_group(self, room_id: str) -> int | None:
        found = await self.db.run(room_group, room_id)
        if found is None:
            return None
        self.note_group(*found)
        return found[0]
