"""Read-only queries of the shared event tables (``schema/events.py``) that sync needs and the
rooms area's service does not offer.  Functions ``fn(conn, ...)`` for ``Database.run``.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
from sqlalchemy import and_, func, select, tuple_

from schema.events import events, room_current_state

MEMBER = "m.room.member"


def latest_stream_per_room(conn: Any) -> dict[str, int]:
    """Each room's highest stream ordering (seeds the notifier's per-room positions)."""
    q = select(events.c.room_id, func.max(events.c.stream_ordering)).group_by(events.c.room_id)
    return {room_id: int(pos) for room_id, pos in conn.execute(q) if pos is not None}


def room_state_contents(conn: Any, event_type: str) -> dict[str, dict]:
    """room ID -> content of the current ``(event_type, "")`` state event, for every room."""
    q = (
        select(room_current_state.c.room_id, events.c.json)
        .select_from(
            room_current_state.join(events, events.c.event_id == room_current_state.c.event_id)
        )
        .where(room_current_state.c.type == event_type, room_current_state.c.state_key == "")
    )
    out = {}
    for room_id, text in conn.execute(q):
        content = orjson.loads(text).get("content")
        out[room_id] = content if isinstance(content, dict) else {}
    return out


def joined_members_not_on(
    conn: Any, room_ids: Sequence[str], server_name: str, limit: int
) -> list[tuple[str, dict]]:
    """(user ID, member content) of joined members of ``room_ids`` from other servers."""
    if not room_ids:
        return []
    cs = room_current_state.c
    q = (
        select(cs.state_key, events.c.json)
        .select_from(room_current_state.join(events, events.c.event_id == cs.event_id))
        .where(
            and_(
                cs.type == MEMBER,
                cs.membership == "join",
                cs.room_id.in_(list(room_ids)),
                ~cs.state_key.like(f"%:{server_name}"),
            )
        )
        .limit(limit)
    )
    out = []
    for user_id, text in conn.execute(q):
        content = orjson.loads(text).get("content")
        out.append((user_id, content if isinstance(content, dict) else {}))
    return out


def notifiable_events_query(
    conn: Any, room_id: str, user_id: str, lo: int, hi: int, types: Sequence[str], limit: int
) -> list[tuple]:
    """(stream, type, sender, state_key, json) of events in (lo, hi] that may notify
    ``user_id`` or that the user sent (newest ``limit``, returned oldest first)."""
    q = (
        select(
            events.c.stream_ordering,
            events.c.type,
            events.c.sender,
            events.c.state_key,
            events.c.json,
            events.c.redacted_by,
        )
        .where(
            events.c.room_id == room_id,
            events.c.stream_ordering > lo,
            events.c.stream_ordering <= hi,
            events.c.rejected_reason.is_(None),
            events.c.outlier.is_(False),
            (events.c.type.in_(list(types))) | (events.c.sender == user_id),
        )
        .order_by(events.c.stream_ordering.desc())
        .limit(limit)
    )
    rows = list(conn.execute(q))
    rows.reverse()
    return rows


def _state_rows(room_id: str):
    return (
        events.c.room_id == room_id,
        events.c.state_key.is_not(None),
        events.c.rejected_reason.is_(None),
        events.c.outlier.is_(False),
    )


def state_ids_at(
    conn: Any, room_id: str, keys: Sequence[tuple[str, str]], position: int
) -> dict[tuple[str, str], str]:
    """For each (type, state_key) in ``keys``: the event ID of its value just after stream
    ``position`` (our rooms are linear: the last accepted state event at or before it).
    Keys without a value then are absent from the result."""
    out: dict[tuple[str, str], str] = {}
    keys = list(keys)
    for i in range(0, len(keys), 200):
        chunk = keys[i : i + 200]
        q = (
            select(events.c.type, events.c.state_key, func.max(events.c.stream_ordering))
            .where(
                *_state_rows(room_id),
                events.c.stream_ordering <= position,
                tuple_(events.c.type, events.c.state_key).in_(chunk),
            )
            .group_by(events.c.type, events.c.state_key)
        )
        latest = {so: (t, k) for t, k, so in conn.execute(q) if so is not None}
        if latest:
            for so, event_id in conn.execute(
                select(events.c.stream_ordering, events.c.event_id).where(
                    events.c.stream_ordering.in_(list(latest))
                )
            ):
                out[latest[so]] = event_id
    return out


def state_ids_between(conn: Any, room_id: str, lo: int, hi: int) -> dict[tuple[str, str], str]:
    """The last state event per key among the room's state events in (lo, hi]."""
    q = (
        select(events.c.type, events.c.state_key, events.c.event_id)
        .where(*_state_rows(room_id), events.c.stream_ordering > lo, events.c.stream_ordering <= hi)
        .order_by(events.c.stream_ordering.asc())
    )
    out: dict[tuple[str, str], str] = {}
    for t, k, event_id in conn.execute(q):
        out[(t, k)] = event_id
    return out
