"""Writing a batch of events: the one transaction behind every ``EventPersister`` batch.

Tables: ``schema/events.py`` (rooms, events, room_current_state, room_memberships,
forward_extremities, event_txn_ids) and ``schema/rooms.py`` (forgotten_rooms).

Hot path: the statements written for every message (the event rows, transaction IDs and
forward extremities) go straight to the DB-API cursor as multi-row ``INSERT``s
(``node.storage.bulk``), inside the same SQLAlchemy transaction.  That skips SQLAlchemy's
per-statement compilation and parameter processing, which costs more than SQLite's own
work for small batches, and the driver's GIL hand-over per row.  Rare statements
(new rooms, state, memberships, redactions) use SQLAlchemy Core.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Connection

from federation.events.model import Event
from node.federation.state_store import write_state_rows
from node.storage.bulk import insert_rows, placeholder
from schema.events import (events, forward_extremities, room_current_state, room_memberships,
                           rooms)

MEMBER = "m.room.member"

EVENT_COLUMNS = ("stream_ordering", "event_id", "room_id", "type", "state_key", "sender",
                 "depth", "origin_server_ts", "json", "rejected_reason", "redacted_by",
                 "outlier", "unsigned_json")
TXN_COLUMNS = ("user_id", "device_id", "txn_id", "event_id", "room_id", "inserted_ts")
EXTREMITY_COLUMNS = ("room_id", "event_id")

def _event_row(ev: Event) -> tuple:
    unsigned = ev.internal.get("unsigned")
    return (ev.internal["stream_ordering"], ev.event_id, ev.room_id, ev.type, ev.state_key,
            ev.sender, ev.depth, ev.origin_server_ts,
            orjson.dumps(ev.pdu, option=orjson.OPT_SORT_KEYS).decode(), ev.rejected_reason,
            None, bool(ev.internal.get("outlier", False)),
            orjson.dumps(unsigned).decode() if unsigned else None)


def _hidden(ev: Event) -> bool:
    return ev.rejected_reason is not None or bool(ev.internal.get("outlier"))


def _becomes_current(ev: Event) -> bool:
    """Is this (visible) state event part of the room's current state after it?  Local
    events always are; a received event carries the current-state delta it caused."""
    delta = ev.internal.get("current_state_delta")
    if delta is None:
        return True
    new = delta.get(ev.key)
    return new is not None and new.event_id == ev.event_id


def write_events(conn: Connection, batch: Sequence[Event]) -> None:
    """Persist a batch of accepted events (stream orderings already assigned) in order.

    Writes room rows for new rooms, the event rows, transaction IDs, memberships (and
    un-forgets rooms on join/invite), current state, forward extremities and redaction
    marks, and the state groups (``node.federation.state_store.write_state_rows``).
    Each event may carry ``internal["extremities_after"]``: the room's forward
    extremities once it is applied (the service knows them); without it they are derived
    from the stored extremities and ``prev_events``.

    Events received over federation may carry ``internal["current_state_delta"]``
    (``{(type, state_key): Event | None}``: how the room's current state changed, after
    state resolution) instead of "a state event replaces its key"; hidden events
    (outliers, soft-failed, rejected) change neither memberships, current state nor
    forward extremities.
    """
    for ev in batch:
        new_room = ev.internal.get("new_room")
        if new_room is not None:
            conn.execute(insert(rooms).values(**new_room))

    # An event held as an outlier (no state known) and now received with its state is
    # stored again as a timeline event: the outlier row goes first.
    replaced = [ev.event_id for ev in batch if ev.internal.get("replaces_outlier")]
    if replaced:
        conn.execute(delete(events).where(events.c.event_id.in_(replaced),
                                          events.c.outlier.is_(True)))
    insert_rows(conn, "events", EVENT_COLUMNS, [_event_row(ev) for ev in batch])

    txn_rows = [(ev.sender, txn[0], txn[1], ev.event_id, ev.room_id, ev.origin_server_ts)
                for ev in batch if (txn := ev.internal.get("txn")) is not None]
    if txn_rows:
        # The same txn ID may have been used by the device in another room (a different
        # endpoint path, so a different request): keep the first mapping, never fail.
        insert_rows(conn, "event_txn_ids", TXN_COLUMNS, txn_rows, ignore_conflicts=True)

    mem_rows = [{"event_id": ev.event_id, "room_id": ev.room_id, "user_id": ev.state_key,
                 "sender": ev.sender, "membership": ev.content.get("membership", ""),
                 "stream_ordering": ev.internal["stream_ordering"]}
                for ev in batch if ev.type == MEMBER and ev.is_state and not _hidden(ev)
                and _becomes_current(ev)]
    if mem_rows:
        from .store import unforget_room
        conn.execute(insert(room_memberships), mem_rows)
        for m in mem_rows:        # joining or being invited again un-forgets the room
            if m["membership"] in ("join", "invite"):
                unforget_room(conn, m["user_id"], m["room_id"])

    # Current state: the last change per (room, type, state_key) in this batch wins.
    last_state: dict[tuple[str, str, str], Event | None] = {}
    for ev in batch:
        delta = ev.internal.get("current_state_delta")
        if delta is not None:
            for (etype, skey), new in delta.items():
                last_state[(ev.room_id, etype, skey)] = new
        elif ev.is_state and not _hidden(ev):
            last_state[(ev.room_id, ev.type, ev.state_key)] = ev
    if last_state:
        cs = room_current_state.c
        for (room_id, etype, skey) in last_state:
            conn.execute(delete(room_current_state).where(
                cs.room_id == room_id, cs.type == etype, cs.state_key == skey))
        rows = [{"room_id": r, "type": t, "state_key": k, "event_id": ev.event_id,
                 "membership": ev.content.get("membership") if t == MEMBER else None}
                for (r, t, k), ev in last_state.items() if ev is not None]
        if rows:
            conn.execute(insert(room_current_state), rows)

    _write_extremities(conn, [ev for ev in batch
                              if not _hidden(ev) and not ev.internal.get("backfilled")])
    write_state_rows(conn, batch)

    # Redactions mark their target (same room only).
    for ev in batch:
        target = ev.internal.get("redacts_target")
        if target is not None:
            conn.execute(update(events).where(events.c.event_id == target,
                                              events.c.room_id == ev.room_id)
                         .values(redacted_by=ev.event_id))


def _write_extremities(conn: Connection, batch: Sequence[Event]) -> None:
    """Each event replaces its prev_events as a tip of its room."""
    if not batch:
        return
    final: dict[str, list[str]] = {}
    for ev in batch:
        after = ev.internal.get("extremities_after")
        if after is not None:
            final[ev.room_id] = list(after)
            continue
        tips = final.get(ev.room_id)
        if tips is None:
            fe = forward_extremities.c
            tips = [r.event_id for r in conn.execute(
                forward_extremities.select().with_only_columns(fe.event_id)
                .where(fe.room_id == ev.room_id))]
        prev = set(ev.prev_event_ids)
        final[ev.room_id] = [t for t in tips if t not in prev] + [ev.event_id]
    ph = placeholder(conn)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute("DELETE FROM forward_extremities WHERE room_id IN ("
                       + ", ".join([ph] * len(final)) + ")", list(final))
    finally:
        cursor.close()
    insert_rows(conn, "forward_extremities", EXTREMITY_COLUMNS,
                [(room_id, t) for room_id, tips in final.items() for t in tips])
