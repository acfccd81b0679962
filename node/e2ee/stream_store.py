"""Database functions of the two E2EE streams (``schema/e2ee.py``): to-device messages
(client-server API "Send-to-Device messaging") and device-list changes ("Tracking the
device list for a user").  Both number their rows with a monotonic ``stream_id``, the
position a sync token carries.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import orjson
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from schema.e2ee import e2ee_device_list_stream as dl
from schema.e2ee import e2ee_to_device as td
from schema.e2ee import e2ee_to_device_txns as txns


def positions(conn: Connection) -> tuple[int, int]:
    """The latest (to-device, device-list) stream positions."""
    return (
        int(conn.execute(select(func.max(td.c.stream_id))).scalar() or 0),
        int(conn.execute(select(func.max(dl.c.stream_id))).scalar() or 0),
    )


# --- to-device -----------------------------------------------------------------------------
def txn_seen(conn: Connection, sender: str, device_id: str, txn_id: str) -> bool:
    return (
        conn.execute(
            select(txns.c.ts).where(
                txns.c.sender == sender, txns.c.device_id == device_id, txns.c.txn_id == txn_id
            )
        ).first()
        is not None
    )


def queue_messages(
    conn: Connection,
    rows: Sequence[tuple[str, str, dict]],
    txn: tuple[str, str, str] | None,
    now_ms: int,
    max_queued: int,
    keep_txn_ms: int,
) -> tuple[int, list[tuple[str, str]]]:
    """Queue ``(user, device, event)`` rows and record ``txn`` (sender, device, txn ID) in
    the same transaction, unless it was recorded already.  A device holding ``max_queued``
    messages gets no more (returned as dropped: a device that never syncs must not grow
    the table without bound).  Returns (last stream ID, dropped (user, device))."""
    if txn is not None:
        if txn_seen(conn, *txn):
            return 0, []
        conn.execute(insert(txns).values(sender=txn[0], device_id=txn[1], txn_id=txn[2], ts=now_ms))
        conn.execute(delete(txns).where(txns.c.ts < now_ms - keep_txn_ms))
    pending: dict[tuple[str, str], int] = {}
    dropped: list[tuple[str, str]] = []
    last = 0
    for user_id, device_id, event in rows:
        key = (user_id, device_id)
        if key not in pending:
            pending[key] = conn.execute(
                select(func.count()).where(td.c.user_id == user_id, td.c.device_id == device_id)
            ).scalar_one()
        if pending[key] >= max_queued:
            dropped.append(key)
            continue
        pending[key] += 1
        result = conn.execute(
            insert(td).values(
                user_id=user_id, device_id=device_id, message_json=orjson.dumps(event).decode()
            )
        )
        pk = result.inserted_primary_key
        last = max(last, int(pk[0]) if pk else 0)
    return last, dropped


def take_messages(
    conn: Connection, user_id: str, device_id: str, acked: int, upper: int, limit: int
) -> list[tuple[int, dict]]:
    """Delete what the device acknowledged (stream IDs up to ``acked``, its ``since``) and
    return the next messages up to ``upper``, oldest first."""
    if acked > 0:
        conn.execute(
            delete(td).where(
                td.c.user_id == user_id, td.c.device_id == device_id, td.c.stream_id <= acked
            )
        )
    rows = conn.execute(
        select(td.c.stream_id, td.c.message_json)
        .where(
            td.c.user_id == user_id,
            td.c.device_id == device_id,
            td.c.stream_id > acked,
            td.c.stream_id <= upper,
        )
        .order_by(td.c.stream_id)
        .limit(limit)
    )
    return [(int(r.stream_id), orjson.loads(r.message_json)) for r in rows]


def delete_device_messages(conn: Connection, user_id: str, device_ids: Iterable[str]) -> None:
    ids = list(device_ids)
    if ids:
        conn.execute(delete(td).where(td.c.user_id == user_id, td.c.device_id.in_(ids)))


# --- device lists --------------------------------------------------------------------------
def add_changes(conn: Connection, rows: Sequence[tuple[str, str | None, str | None]]) -> list[int]:
    """Record (user, room or None, membership or None) changes; their stream IDs."""
    ids = []
    for user_id, room_id, membership in rows:
        result = conn.execute(
            insert(dl).values(user_id=user_id, room_id=room_id, membership=membership)
        )
        pk = result.inserted_primary_key
        ids.append(int(pk[0]) if pk else 0)
    return ids


def changes_between(
    conn: Connection, since: int, upper: int, limit: int
) -> list[tuple[str, str | None, str | None]]:
    """The changes after ``since`` up to ``upper`` in order (at most ``limit`` + 1 rows:
    one more than the limit says there were too many to read one by one)."""
    rows = conn.execute(
        select(dl.c.user_id, dl.c.room_id, dl.c.membership)
        .where(dl.c.stream_id > since, dl.c.stream_id <= upper)
        .order_by(dl.c.stream_id)
        .limit(limit + 1)
    )
    return [(r.user_id, r.room_id, r.membership) for r in rows]


def user_stream_id(conn: Connection, user_id: str) -> int:
    """The latest key change of a user (the ``stream_id`` of ``user/devices``)."""
    return int(
        conn.execute(
            select(func.max(dl.c.stream_id)).where(dl.c.user_id == user_id, dl.c.room_id.is_(None))
        ).scalar()
        or 0
    )
