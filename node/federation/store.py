"""SQL the federation area needs beyond ``node.rooms.store``: functions ``fn(conn, ...)``
for ``Database.run`` (no reactor here).

Tables: ``schema/events.py`` (events, rooms, room_current_state), ``schema/federation.py``
(event_state_groups, federation_inbound_txns).
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson
from sqlalchemy import delete, select

from node.storage.bulk import placeholder as _placeholder
from schema.events import events, room_current_state, rooms
from schema.federation import event_state_groups, federation_inbound_txns


def event_status(conn: Any, event_ids: Sequence[str]) -> dict[str, tuple[bool, bool, bool]]:
    """event_id -> (outlier, rejected, has state groups) for the events we hold.

    Asked for every inbound transaction, so it is one query per 500 IDs on the DB-API
    cursor (SQLAlchemy's expanding-IN rendering cost more than SQLite's own work)."""
    out: dict[str, tuple[bool, bool, bool]] = {}
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return out
    ph = _placeholder(conn)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            cursor.execute(
                "SELECT e.event_id, e.outlier, e.rejected_reason IS NOT NULL, EXISTS "
                "(SELECT 1 FROM event_state_groups g WHERE g.event_id = e.event_id) "
                f"FROM events e WHERE e.event_id IN ({', '.join([ph] * len(chunk))})",
                chunk,
            )
            for event_id, outlier, rejected, grouped in cursor.fetchall():
                out[event_id] = (bool(outlier), bool(rejected), bool(grouped))
    finally:
        cursor.close()
    return out


def min_depth_with_state(conn: Any, room_id: str) -> int:
    """The smallest depth of the room's events whose state we know (0 if none): walking
    back further than that cannot connect to what we have (``get_missing_events``'
    ``min_depth``)."""
    from sqlalchemy import func

    value = conn.execute(
        select(func.min(events.c.depth))
        .select_from(
            events.join(event_state_groups, event_state_groups.c.event_id == events.c.event_id)
        )
        .where(events.c.room_id == room_id)
    ).scalar()
    return int(value or 0)


def delete_outliers(conn: Any, event_ids: Sequence[str]) -> None:
    """Drop outlier rows about to be stored again as timeline events (de-outliering)."""
    if event_ids:
        conn.execute(
            delete(events).where(events.c.event_id.in_(list(event_ids)), events.c.outlier.is_(True))
        )


def room_ids_of(conn: Any, event_ids: Sequence[str]) -> dict[str, str]:
    return {
        r.event_id: r.room_id
        for r in conn.execute(
            select(events.c.event_id, events.c.room_id).where(
                events.c.event_id.in_(list(event_ids))
            )
        )
    }


def joined_servers(conn: Any, room_id: str) -> set[str]:
    """Servers with a joined member in the room's current state."""
    rows = conn.execute(
        select(room_current_state.c.state_key).where(
            room_current_state.c.room_id == room_id,
            room_current_state.c.type == "m.room.member",
            room_current_state.c.membership == "join",
        )
    )
    return {r.state_key.partition(":")[2] for r in rows}


def room_exists(conn: Any, room_id: str) -> bool:
    return (
        conn.execute(select(rooms.c.room_id).where(rooms.c.room_id == room_id)).first() is not None
    )


# --- inbound transactions ------------------------------------------------------------------


def get_txn_response(conn: Any, origin: str, txn_id: str) -> dict | None:
    ph = _placeholder(conn)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(
            f"SELECT response FROM federation_inbound_txns WHERE origin = {ph} AND txn_id = {ph}",
            (origin, txn_id),
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    return orjson.loads(row[0]) if row is not None else None


def txn_response_and_event_status(
    conn: Any, origin: str, txn_id: str, event_ids: Sequence[str]
) -> tuple[dict | None, dict[str, tuple[bool, bool, bool]]]:
    """One round trip for an inbound transaction: its stored response (a replay), else the
    ``event_status`` of its PDUs."""
    stored = get_txn_response(conn, origin, txn_id)
    if stored is not None:
        return stored, {}
    return None, event_status(conn, event_ids)


def save_txn_response(conn: Any, origin: str, txn_id: str, response: dict, ts: int) -> None:
    ph = _placeholder(conn)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(
            f"DELETE FROM federation_inbound_txns WHERE origin = {ph} AND txn_id = {ph}",
            (origin, txn_id),
        )
        cursor.execute(
            "INSERT INTO federation_inbound_txns (origin, txn_id, response, "
            f"received_ts) VALUES ({ph}, {ph}, {ph}, {ph})",
            (origin, txn_id, orjson.dumps(response).decode(), ts),
        )
    finally:
        cursor.close()


def forget_txn_response(conn: Any, origin: str, txn_id: str) -> None:
    t = federation_inbound_txns
    conn.execute(delete(t).where(t.c.origin == origin, t.c.txn_id == txn_id))


def prune_txns(conn: Any, before_ts: int) -> int:
    t = federation_inbound_txns
    return conn.execute(delete(t).where(t.c.received_ts < before_ts)).rowcount
