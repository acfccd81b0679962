"""Writing a batch of events: the one transaction behind every ``EventPersister`` batch.

Tables: ``schema/events.py`` (rooms, events, room_current_state, room_memberships,
forward_extremities, event_txn_ids) and ``schema/rooms.py`` (forgotten_rooms).

Hot path: the statements written for every message (the event rows, transaction IDs and
forward extremities) go straight to the DB-API cursor as multi-row ``INSERT``s
(``node.storage.bulk``), inside the same SQLAlchemy transaction.  That skips SQLAlchemy's
per-statement compilation and parameter processing, which costs more than SQLite's own
work for small batches, and the driver's GIL hand-over per row.  Rare statements
(new rooms, state, memberships, redactions) use SQLAlchemy Core.

Before an event joins a batch, ``check_storable`` makes sure it can become a row at all
(its JSON encodes, its string columns hold no NUL and fit the schema's ``String(n)``, its
integers fit ``BIGINT``): one user's unstorable event must be refused on its own, never
fail the shared transaction that carries other users' events.  The JSON text it encodes
is kept for the write, so the check costs no second encoding.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Connection

from federation.errors import MatrixError
from federation.events.model import Event
from node.storage.bulk import insert_rows, placeholder
from schema.events import events, forward_extremities, room_current_state, room_memberships, rooms

from .event_meta import committed_stream, meta
from .relations_store import write_relation_rows
from .state_store import write_state_rows

MEMBER = "m.room.member"

EVENT_COLUMNS = (
    "stream_ordering",
    "event_id",
    "room_id",
    "type",
    "state_key",
    "sender",
    "depth",
    "origin_server_ts",
    "json",
    "rejected_reason",
    "redacted_by",
    "outlier",
    "unsigned_json",
)
TXN_COLUMNS = ("user_id", "device_id", "txn_id", "event_id", "room_id", "inserted_ts")
EXTREMITY_COLUMNS = ("room_id", "event_id")

# Column sizes of schema/events.py and schema/rooms.py (PostgreSQL enforces them).
MAX_ID_CHARS = 255  # String(255): IDs, type, state_key, txn IDs, room_type
MAX_MEMBERSHIP_CHARS = 32  # String(32): room_memberships.membership
MAX_VERSION_CHARS = 32  # String(32): rooms.room_version
BIGINT_MIN, BIGINT_MAX = -(1 << 63), (1 << 63) - 1


class Unstorable(MatrixError):
    """The event cannot be written to the database (400 M_BAD_JSON for its sender only)."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"The event cannot be stored: {why}", errcode="M_BAD_JSON", http_status=400
        )


def _check_text(name: str, value: Any, limit: int = MAX_ID_CHARS) -> None:
    """A string column: a ``str`` of at most ``limit`` characters, without NUL (which
    PostgreSQL refuses in text) and encodable as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise Unstorable(f"{name} is not a string")
    if len(value) > limit:
        raise Unstorable(f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise Unstorable(f"{name} contains a NUL character")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise Unstorable(f"{name} is not valid Unicode") from None


def _check_bigint(name: str, value: Any) -> None:
    if type(value) is not int or not BIGINT_MIN <= value <= BIGINT_MAX:
        raise Unstorable(f"{name} is not a 64-bit integer")


def check_storable(ev: Event) -> tuple[str, str | None]:
    """Raise ``Unstorable`` unless ``ev`` can be written by ``write_events``; keep its
    encoded JSON in ``meta(ev).row_json`` for the write (and return it).  Cheap: the short string
    columns are checked in one pass over their concatenation (C-level ``in``,
    ``isascii``), column by column only when that finds something; plus the one JSON
    encoding the row needs anyway.

    Call it before the event changes anything in memory (the room service does), so a
    refused event leaves no trace; the persister calls it for events queued without it."""
    pdu = ev.pdu
    # Any JSON values: a non-string makes the join below raise TypeError.
    strings: list[Any] = [ev.event_id, ev.room_id, pdu.get("type"), pdu.get("sender")]
    state_key = pdu.get("state_key")
    if state_key is not None:
        strings.append(state_key)
    m = meta(ev)
    txn = m.txn
    if txn is not None:
        strings += txn
    try:
        joined = "".join(strings)
        plain = (
            joined.isascii()
            and "\x00" not in joined
            and (len(joined) <= MAX_ID_CHARS or max(map(len, strings)) <= MAX_ID_CHARS)
        )
    except TypeError:  # not all strings
        plain = False
    if not plain:
        _check_columns(ev)
    depth, ts = pdu.get("depth", 0), pdu.get("origin_server_ts", 0)
    if (
        type(depth) is not int
        or type(ts) is not int
        or not BIGINT_MIN <= depth <= BIGINT_MAX
        or not BIGINT_MIN <= ts <= BIGINT_MAX
    ):
        _check_bigint("depth", depth)
        _check_bigint("origin_server_ts", ts)
    if "state_key" in pdu and pdu.get("type") == MEMBER and not _hidden(ev):
        _check_text("membership", ev.content.get("membership", ""), MAX_MEMBERSHIP_CHARS)
    new_room = m.new_room
    if new_room is not None:
        check_new_room(new_room)
    # ``unsigned`` (replaces_state, prev_content, prev_sender) nests the replaced
    # event's content exactly as deep as that event's own JSON did: it encodes whenever
    # the replaced event could be stored.
    unsigned = m.unsigned
    try:
        text = orjson.dumps(pdu, option=orjson.OPT_SORT_KEYS).decode()
        unsigned_text = orjson.dumps(unsigned).decode() if unsigned else None
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        raise Unstorable("it cannot be encoded as JSON (nested too deeply?)") from None
    m.row_json = row = (text, unsigned_text)
    return row


def _check_columns(ev: Event) -> None:
    """The string columns one by one, for a precise message (or none: non-ASCII text)."""
    _check_text("event_id", ev.event_id)
    _check_text("room_id", ev.room_id)
    _check_text("type", ev.pdu.get("type"))
    _check_text("sender", ev.pdu.get("sender"))
    if ev.state_key is not None:
        _check_text("state_key", ev.state_key)
    txn = meta(ev).txn
    if txn is not None:
        _check_text("device ID", txn[0])
        _check_text("transaction ID", txn[1])


def check_new_room(row: dict) -> None:
    """The ``rooms`` row a room's first event carries (``meta(ev).new_room``); it may
    be attached after the event was checked (room creation), so the persister checks it
    again when it is there."""
    _check_text("room_version", row.get("room_version"), MAX_VERSION_CHARS)
    _check_text("creator", row.get("creator"))
    if row.get("room_type") is not None:
        _check_text("room type", row["room_type"])


def _event_row(ev: Event) -> tuple:
    m = meta(ev)
    encoded = m.row_json
    if encoded is None:
        encoded = check_storable(ev)
    reason = ev.rejected_reason
    if reason is not None and "\x00" in reason:  # our own text, quoting the event
        reason = reason.replace("\x00", "\ufffd")
    return (
        committed_stream(ev),
        ev.event_id,
        ev.room_id,
        ev.type,
        ev.state_key,
        ev.sender,
        ev.depth,
        ev.origin_server_ts,
        encoded[0],
        reason,
        None,
        m.outlier,
        encoded[1],
    )


def _hidden(ev: Event) -> bool:
    return ev.rejected_reason is not None or meta(ev).outlier


def _becomes_current(ev: Event) -> bool:
    """Is this (visible) state event part of the room's current state after it?  Local
    events always are; a received event carries the current-state delta it caused."""
    delta = meta(ev).current_state_delta
    if delta is None:
        return True
    new = delta.get(ev.key)
    return new is not None and new.event_id == ev.event_id


def write_events(conn: Connection, batch: Sequence[Event]) -> None:
    """Persist a batch of accepted events (stream orderings already assigned) in order.

    Writes room rows for new rooms, the event rows, transaction IDs, memberships (and
    un-forgets rooms on join/invite), current state, forward extremities and redaction
    marks, the state groups (``node.rooms.state_store.write_state_rows``) and the
    relation rows (``node.rooms.relations_store.write_relation_rows``).
    Each event may carry ``meta(ev).extremities_after``: the room's forward
    extremities once it is applied (the service knows them); without it they are derived
    from the stored extremities and ``prev_events``.

    Events received over federation may carry ``meta(ev).current_state_delta``
    (``{(type, state_key): Event | None}``: how the room's current state changed, after
    state resolution) instead of "a state event replaces its key"; hidden events
    (outliers, soft-failed, rejected) change neither memberships, current state nor
    forward extremities.
    """
    for ev in batch:
        new_room = meta(ev).new_room
        if new_room is not None:
            conn.execute(insert(rooms).values(**new_room))

    # An event held as an outlier (no state known) and now received with its state is
    # stored again as a timeline event: the outlier row goes first.
    replaced = [ev.event_id for ev in batch if meta(ev).replaces_outlier]
    if replaced:
        conn.execute(
            delete(events).where(events.c.event_id.in_(replaced), events.c.outlier.is_(True))
        )
    insert_rows(conn, "events", EVENT_COLUMNS, [_event_row(ev) for ev in batch])

    txn_rows = [
        (ev.sender, txn[0], txn[1], ev.event_id, ev.room_id, ev.origin_server_ts)
        for ev in batch
        if (txn := meta(ev).txn) is not None
    ]
    if txn_rows:
        # The same txn ID may have been used by the device in another room (a different
        # endpoint path, so a different request): keep the first mapping, never fail.
        insert_rows(conn, "event_txn_ids", TXN_COLUMNS, txn_rows, ignore_conflicts=True)

    mem_rows = [
        {
            "event_id": ev.event_id,
            "room_id": ev.room_id,
            "user_id": ev.state_key,
            "sender": ev.sender,
            "membership": ev.content.get("membership", ""),
            "stream_ordering": committed_stream(ev),
        }
        for ev in batch
        if ev.type == MEMBER and ev.is_state and not _hidden(ev) and _becomes_current(ev)
    ]
    if mem_rows:
        from .store import unforget_room

        conn.execute(insert(room_memberships), mem_rows)
        for m in mem_rows:  # joining or being invited again un-forgets the room
            if m["membership"] in ("join", "invite"):
                unforget_room(conn, m["user_id"], m["room_id"])

    # Current state: the last change per (room, type, state_key) in this batch wins.
    last_state: dict[tuple[str, str, str], Event | None] = {}
    for ev in batch:
        delta = meta(ev).current_state_delta
        if delta is not None:
            for (etype, skey), new in delta.items():
                last_state[(ev.room_id, etype, skey)] = new
        elif ev.is_state and not _hidden(ev):
            last_state[(ev.room_id, *ev.key)] = ev
    if last_state:
        cs = room_current_state.c
        for room_id, etype, skey in last_state:
            conn.execute(
                delete(room_current_state).where(
                    cs.room_id == room_id, cs.type == etype, cs.state_key == skey
                )
            )
        rows = [
            {
                "room_id": r,
                "type": t,
                "state_key": k,
                "event_id": ev.event_id,
                "membership": ev.content.get("membership") if t == MEMBER else None,
            }
            for (r, t, k), ev in last_state.items()
            if ev is not None
        ]
        if rows:
            conn.execute(insert(room_current_state), rows)

    _write_extremities(conn, [ev for ev in batch if not _hidden(ev) and not meta(ev).backfilled])
    write_state_rows(conn, batch)

    # Redactions mark their target (same room only).
    for ev in batch:
        target = meta(ev).redacts_target
        if target is not None:
            conn.execute(
                update(events)
                .where(events.c.event_id == target, events.c.room_id == ev.room_id)
                .values(redacted_by=ev.event_id)
            )
    # Event relationships (threads, edits, references): nothing for most batches.
    write_relation_rows(conn, batch)


def _write_extremities(conn: Connection, batch: Sequence[Event]) -> None:
    """Each event replaces its prev_events as a tip of its room."""
    if not batch:
        return
    final: dict[str, list[str]] = {}
    for ev in batch:
        after = meta(ev).extremities_after
        if after is not None:
            final[ev.room_id] = list(after)
            continue
        tips = final.get(ev.room_id)
        if tips is None:
            fe = forward_extremities.c
            tips = [
                r.event_id
                for r in conn.execute(
                    forward_extremities.select()
                    .with_only_columns(fe.event_id)
                    .where(fe.room_id == ev.room_id)
                )
            ]
        prev = set(ev.prev_event_ids)
        final[ev.room_id] = [t for t in tips if t not in prev] + [ev.event_id]
    ph = placeholder(conn)
    dbapi: Any = conn.connection.dbapi_connection  # open, so never None
    cursor = dbapi.cursor()
    try:
        cursor.execute(
            "DELETE FROM forward_extremities WHERE room_id IN ("
            + ", ".join([ph] * len(final))
            + ")",
            list(final),
        )
    finally:
        cursor.close()
    insert_rows(
        conn,
        "forward_extremities",
        EXTREMITY_COLUMNS,
        [(room_id, t) for room_id, tips in final.items() for t in tips],
    )
