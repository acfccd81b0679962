"""SQL for the rooms area: functions ``fn(conn, ...)`` that ``Database.run`` executes on a
database thread inside one transaction.  Nothing here touches the reactor.

Tables: ``schema/events.py`` (rooms, events, room_current_state, room_memberships,
forward_extremities, event_txn_ids -- shared with sync) and ``schema/rooms.py``
(room_aliases, forgotten_rooms).

Events come back as ``federation.events.model.Event`` with these ``node.rooms.event_meta``
fields: ``stream_ordering`` (int), ``unsigned`` (server-generated unsigned data fixed at persist
time: replaces_state, prev_content, prev_sender), ``txn`` ((device_id, txn_id) of the
sending device, when sent with a transaction ID) and ``redacted_because`` (the redaction
``Event``; the PDU is then already redacted, ``redacted_by`` its ID).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Sequence

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from federation.events.model import Event
from federation.events.redaction import redact
from federation.room_versions import KNOWN_ROOM_VERSIONS, get_room_version
from schema.events import (
    event_txn_ids,
    events,
    forward_extremities,
    room_current_state,
    room_memberships,
    rooms,
)
from schema.rooms import forgotten_rooms, room_aliases

from .event_meta import EventMeta, meta
from .state_store import room_group

MEMBER = "m.room.member"
HISTORY_VISIBILITY = "m.room.history_visibility"

_EVENT_COLUMNS = (
    events.c.stream_ordering,
    events.c.event_id,
    events.c.json,
    events.c.redacted_by,
    events.c.unsigned_json,
    events.c.rejected_reason,
    rooms.c.room_version,
    event_txn_ids.c.device_id,
    event_txn_ids.c.txn_id,
)
_EVENT_FROM = events.join(rooms, events.c.room_id == rooms.c.room_id).outerjoin(
    event_txn_ids, events.c.event_id == event_txn_ids.c.event_id
)


def _version(identifier: str):
    return KNOWN_ROOM_VERSIONS.get(identifier) or get_room_version(identifier)


def _row_to_event(row: Any) -> Event:
    ev = Event(orjson.loads(row.json), _version(row.room_version), event_id=row.event_id)
    m = ev.meta = EventMeta(stream_ordering=row.stream_ordering)
    if row.unsigned_json:
        m.unsigned = orjson.loads(row.unsigned_json)
    if row.device_id is not None:
        m.txn = (row.device_id, row.txn_id)
    ev.rejected_reason = row.rejected_reason
    if row.redacted_by:
        m.redacted_by = row.redacted_by
    return ev


def _rows_to_events(conn: Connection, rows: Iterable[Any]) -> list[Event]:
    """Build events; serve redacted ones redacted, with ``redacted_because`` attached."""
    out = [_row_to_event(r) for r in rows]
    redaction_ids = {r for ev in out if (r := meta(ev).redacted_by) is not None}
    if redaction_ids:
        reds = {
            r.event_id: _row_to_event(r)
            for r in conn.execute(
                select(*_EVENT_COLUMNS)
                .select_from(_EVENT_FROM)
                .where(events.c.event_id.in_(redaction_ids))
            )
        }
        for i, ev in enumerate(out):
            red = reds.get(meta(ev).redacted_by or "")
            if red is not None:
                out[i] = redacted_copy(ev, red)
    return out


def redacted_copy(ev: Event, redaction: Event) -> Event:
    """``ev`` as served after ``redaction``: redacted PDU, same node bookkeeping."""
    red = Event(redact(ev.pdu, ev.room_version), ev.room_version, event_id=ev.event_id)
    red.meta = replace(
        meta(ev),
        unsigned=None,  # prev_content etc. of the original no longer apply
        redacted_by=redaction.event_id,
        redacted_because=redaction,
    )
    red.rejected_reason = ev.rejected_reason
    red.content_hash_mismatch = ev.content_hash_mismatch
    return red


# --- events --------------------------------------------------------------------------


def max_stream_ordering(conn: Connection) -> int:
    return conn.execute(select(func.max(events.c.stream_ordering))).scalar() or 0


def stream_ordering_bounds(conn: Connection) -> tuple[int, int]:
    """(lowest, highest) stream ordering (backfilled history is at or below 0)."""
    low, high = conn.execute(
        select(func.min(events.c.stream_ordering), func.max(events.c.stream_ordering))
    ).one()  # aggregates
    return (low or 0, high or 0)


def fetch_events(conn: Connection, event_ids: Sequence[str]) -> dict[str, Event]:
    if not event_ids:
        return {}
    rows = conn.execute(
        select(*_EVENT_COLUMNS)
        .select_from(_EVENT_FROM)
        .where(events.c.event_id.in_(list(event_ids)))
    )
    return {ev.event_id: ev for ev in _rows_to_events(conn, rows)}


def events_in_range(
    conn: Connection,
    room_id: str,
    from_stream: int | None,
    to_stream: int | None,
    limit: int,
    direction: str,
) -> list[Event]:
    """Accepted events of ``room_id`` between two stream positions.

    A position ``n`` lies just after the event with stream ordering ``n``.  Direction
    ``"b"``: ``to < stream <= from``, newest first; ``"f"``: ``from < stream <= to``,
    oldest first.  ``None`` means unbounded on that side.
    """
    so = events.c.stream_ordering
    q = (
        select(*_EVENT_COLUMNS)
        .select_from(_EVENT_FROM)
        .where(
            events.c.room_id == room_id,
            events.c.rejected_reason.is_(None),
            events.c.outlier.is_(False),
        )
    )
    if direction == "b":
        if from_stream is not None:
            q = q.where(so <= from_stream)
        if to_stream is not None:
            q = q.where(so > to_stream)
        q = q.order_by(so.desc())
    else:
        if from_stream is not None:
            q = q.where(so > from_stream)
        if to_stream is not None:
            q = q.where(so <= to_stream)
        q = q.order_by(so.asc())
    return _rows_to_events(conn, conn.execute(q.limit(limit)))


def event_stream_ordering(conn: Connection, event_id: str) -> tuple[str, int] | None:
    row = conn.execute(
        select(events.c.room_id, events.c.stream_ordering).where(events.c.event_id == event_id)
    ).first()
    return (row.room_id, row.stream_ordering) if row else None


def lookup_txn(conn: Connection, user_id: str, device_id: str, txn_id: str) -> str | None:
    return conn.execute(
        select(event_txn_ids.c.event_id).where(
            event_txn_ids.c.user_id == user_id,
            event_txn_ids.c.device_id == device_id,
            event_txn_ids.c.txn_id == txn_id,
        )
    ).scalar()


# --- rooms and state -----------------------------------------------------------------


def load_room(conn: Connection, room_id: str) -> dict | None:
    """Everything a ``RoomState`` needs, in one transaction (None for an unknown room)."""
    row = conn.execute(select(rooms).where(rooms.c.room_id == room_id)).first()
    if row is None:
        return None
    state_ids = [
        r.event_id
        for r in conn.execute(
            select(room_current_state.c.event_id).where(room_current_state.c.room_id == room_id)
        )
    ]
    extremities = [
        r.event_id
        for r in conn.execute(
            select(forward_extremities.c.event_id).where(forward_extremities.c.room_id == room_id)
        )
    ]
    state = fetch_events(conn, state_ids)
    depth = (
        conn.execute(select(func.max(events.c.depth)).where(events.c.room_id == room_id)).scalar()
        or 0
    )
    return {
        "row": row._mapping,
        "state": list(state.values()),
        "extremities": extremities,
        "depth": depth,
        "state_group": room_group(conn, room_id),
    }


def all_room_ids(conn: Connection) -> list[str]:
    return [r.room_id for r in conn.execute(select(rooms.c.room_id))]


def state_at_stream(conn: Connection, room_id: str, stream: int) -> dict[tuple[str, str], Event]:
    """The room state after the event at ``stream`` (our DAG is linear: the last accepted
    state event per key)."""
    rows = conn.execute(
        select(*_EVENT_COLUMNS)
        .select_from(_EVENT_FROM)
        .where(
            events.c.room_id == room_id,
            events.c.state_key.is_not(None),
            events.c.rejected_reason.is_(None),
            events.c.outlier.is_(False),
            events.c.stream_ordering <= stream,
        )
        .order_by(events.c.stream_ordering.asc())
    )
    state: dict[tuple[str, str], Event] = {}
    for ev in _rows_to_events(conn, rows):
        state[ev.key] = ev
    return state


def membership_timeline(conn: Connection, room_id: str, user_id: str) -> list[tuple[int, str]]:
    return [
        (r.stream_ordering, r.membership)
        for r in conn.execute(
            select(room_memberships.c.stream_ordering, room_memberships.c.membership)
            .where(room_memberships.c.user_id == user_id, room_memberships.c.room_id == room_id)
            .order_by(room_memberships.c.stream_ordering.asc())
        )
    ]


def history_visibility_timeline(conn: Connection, room_id: str) -> list[tuple[int, str]]:
    out = []
    for r in conn.execute(
        select(events.c.stream_ordering, events.c.json, events.c.redacted_by)
        .where(
            events.c.room_id == room_id,
            events.c.type == HISTORY_VISIBILITY,
            events.c.state_key == "",
            events.c.rejected_reason.is_(None),
        )
        .order_by(events.c.stream_ordering.asc())
    ):
        value = orjson.loads(r.json).get("content", {}).get("history_visibility")
        out.append((r.stream_ordering, value if isinstance(value, str) else "shared"))
    return out


def current_memberships(
    conn: Connection, user_id: str, memberships: Sequence[str] | None = None
) -> list[tuple[str, str, str]]:
    """(room_id, membership, event_id) of the user's current member events."""
    q = select(
        room_current_state.c.room_id, room_current_state.c.membership, room_current_state.c.event_id
    ).where(room_current_state.c.state_key == user_id, room_current_state.c.type == MEMBER)
    if memberships is not None:
        q = q.where(room_current_state.c.membership.in_(list(memberships)))
    return [(r.room_id, r.membership, r.event_id) for r in conn.execute(q)]


def memberships_changed(conn: Connection, user_id: str, since: int) -> list[tuple[str, str, Event]]:
    """The latest membership change per room of ``user_id`` after stream ``since``."""
    rows = conn.execute(
        select(
            room_memberships.c.room_id,
            room_memberships.c.membership,
            room_memberships.c.event_id,
            room_memberships.c.stream_ordering,
        )
        .where(room_memberships.c.user_id == user_id, room_memberships.c.stream_ordering > since)
        .order_by(room_memberships.c.stream_ordering.asc())
    )
    latest: dict[str, Any] = {}
    for r in rows:
        latest[r.room_id] = r
    evs = fetch_events(conn, [r.event_id for r in latest.values()])
    out = [
        (r.room_id, r.membership, evs[r.event_id])
        for r in sorted(latest.values(), key=lambda r: r.stream_ordering)
        if r.event_id in evs
    ]
    return out


def set_room_public(conn: Connection, room_id: str, is_public: bool) -> bool:
    res = conn.execute(update(rooms).where(rooms.c.room_id == room_id).values(is_public=is_public))
    return res.rowcount > 0


def public_room_ids(conn: Connection) -> list[str]:
    return [
        r.room_id
        for r in conn.execute(
            select(rooms.c.room_id)
            .where(rooms.c.is_public.is_(True))
            .order_by(rooms.c.created_ts.asc())
        )
    ]


# --- aliases -------------------------------------------------------------------------


def alias_room_id(conn: Connection, alias: str) -> str | None:
    return conn.execute(
        select(room_aliases.c.room_id).where(room_aliases.c.room_alias == alias)
    ).scalar()


def alias_row(conn: Connection, alias: str) -> Any:
    return conn.execute(select(room_aliases).where(room_aliases.c.room_alias == alias)).first()


def create_alias(conn: Connection, alias: str, room_id: str, creator: str, ts: int) -> bool:
    """Insert the mapping; False when the alias already exists."""
    if alias_room_id(conn, alias) is not None:
        return False
    conn.execute(
        insert(room_aliases).values(
            room_alias=alias, room_id=room_id, creator=creator, created_ts=ts
        )
    )
    return True


def delete_alias(conn: Connection, alias: str) -> bool:
    return conn.execute(delete(room_aliases).where(room_aliases.c.room_alias == alias)).rowcount > 0


def aliases_for_room(conn: Connection, room_id: str) -> list[str]:
    return [
        r.room_alias
        for r in conn.execute(
            select(room_aliases.c.room_alias)
            .where(room_aliases.c.room_id == room_id)
            .order_by(room_aliases.c.created_ts.asc(), room_aliases.c.room_alias.asc())
        )
    ]


# --- forgetting ----------------------------------------------------------------------


def forget_room(conn: Connection, user_id: str, room_id: str, ts: int) -> None:
    exists = conn.execute(
        select(forgotten_rooms.c.room_id).where(
            forgotten_rooms.c.user_id == user_id, forgotten_rooms.c.room_id == room_id
        )
    ).first()
    if exists is None:
        conn.execute(
            insert(forgotten_rooms).values(user_id=user_id, room_id=room_id, forgotten_ts=ts)
        )


def unforget_room(conn: Connection, user_id: str, room_id: str) -> None:
    conn.execute(
        delete(forgotten_rooms).where(
            forgotten_rooms.c.user_id == user_id, forgotten_rooms.c.room_id == room_id
        )
    )


def forgotten_room_ids(conn: Connection, user_id: str) -> set[str]:
    return {
        r.room_id
        for r in conn.execute(
            select(forgotten_rooms.c.room_id).where(forgotten_rooms.c.user_id == user_id)
        )
    }
