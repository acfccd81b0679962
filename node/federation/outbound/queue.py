"""The persisted per-destination queue of PDUs and EDUs (``schema/federation_outbound.py``).

Spec: server-server API "Transactions" -- at most 50 PDUs and 100 EDUs per transaction;
"The sending server must wait and retry for a 200 OK response before sending a transaction
with a different ``txnId``".

Functions ``fn(conn, ...)`` run inside one ``Database.run`` transaction:

* ``enqueue_pdus`` -- queue rows for (destination, event) pairs and advance the fan-out
  position in the same transaction (crash-safe: either both or neither);
* ``enqueue_edus`` -- queue EDUs, replacing an unsent one with the same coalesce key;
* ``claim_batch`` -- the transaction to send next: the one in flight (same ``txnId``, same
  rows) if there is one, else the oldest ``<= 50`` PDUs (stream order) and ``<= 100`` EDUs,
  marked with a new ``txnId``;
* ``claim_batches`` / ``complete_txns`` -- the same for many destinations in one
  transaction with a fixed number of statements (set-based: the fan-out of one event to
  hundreds of servers must not cost a dozen statements per server on the single SQLite
  writer, see docs/benchmarks.md "City gateway");
* ``complete_txn`` -- delete the sent rows, clear the in-flight mark, reset the retries;
* ``record_failure`` / ``load_retry_states`` -- retry state per destination;
* ``drop_destination`` -- forget everything queued for a destination (policy refusal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from schema.events import events as events_t
from schema.federation_outbound import federation_destinations as dest_t
from schema.federation_outbound import federation_outbound_edus as edus_t
from schema.federation_outbound import federation_outbound_pdus as pdus_t
from schema.federation_outbound import federation_outbound_position as pos_t

from .backoff import RetryState

MAX_PDUS = 50
MAX_EDUS = 100
FANOUT = "pdus"


@dataclass(frozen=True)
class Batch:
    txn_id: str
    event_ids: list[str]  # in stream order
    edus: list[dict]  # {"edu_type": ..., "content": ...}
    resumed: bool  # the transaction was already in flight


# --- fan-out position -------------------------------------------------------------------


def get_position(conn: Connection) -> int | None:
    return conn.execute(select(pos_t.c.stream_ordering).where(pos_t.c.name == FANOUT)).scalar()


def set_position(conn: Connection, stream_ordering: int) -> None:
    updated = conn.execute(
        update(pos_t).where(pos_t.c.name == FANOUT).values(stream_ordering=stream_ordering)
    ).rowcount
    if not updated:
        conn.execute(insert(pos_t).values(name=FANOUT, stream_ordering=stream_ordering))


def max_stream_ordering(conn: Connection) -> int:
    return int(conn.execute(select(func.max(events_t.c.stream_ordering))).scalar() or 0)


def events_after(conn: Connection, position: int, limit: int) -> list[tuple]:
    """Accepted, non-outlier events after ``position`` in stream order:
    ``(stream_ordering, event_id, room_id, type, state_key, sender)`` -- the start-up
    catch-up of the fan-out (the caller keeps the local ones)."""
    e = events_t.c
    return [
        tuple(r)
        for r in conn.execute(
            select(e.stream_ordering, e.event_id, e.room_id, e.type, e.state_key, e.sender)
            .where(e.stream_ordering > position, e.outlier.is_(False), e.rejected_reason.is_(None))
            .order_by(e.stream_ordering)
            .limit(limit)
        )
    ]


# --- enqueue ----------------------------------------------------------------------------


def _ensure_destinations(conn: Connection, destinations: Iterable[str]) -> None:
    wanted = set(destinations)
    if not wanted:
        return
    have = {
        r[0]
        for r in conn.execute(select(dest_t.c.destination).where(dest_t.c.destination.in_(wanted)))
    }
    missing = sorted(wanted - have)
    if missing:
        conn.execute(
            insert(dest_t),
            [
                {
                    "destination": d,
                    "txn_counter": 0,
                    "failures": 0,
                    "retry_interval_ms": 0,
                    "next_retry_ts": 0,
                }
                for d in missing
            ],
        )


def enqueue_pdus(
    conn: Connection, rows: Sequence[tuple[str, int, str]], position: int | None = None
) -> int:
    """Queue ``(destination, stream_ordering, event_id)`` rows (duplicates ignored) and,
    with ``position``, advance the fan-out position.  Returns how many rows were new."""
    new = 0
    if rows:
        dests = {d for d, _, _ in rows}
        _ensure_destinations(conn, dests)
        # One query for what is already queued (the fan-out of one event to hundreds of
        # servers must not cost a query per server).
        have = {
            (r[0], r[1])
            for r in conn.execute(
                select(pdus_t.c.destination, pdus_t.c.event_id).where(
                    pdus_t.c.destination.in_(sorted(dests)),
                    pdus_t.c.event_id.in_(sorted({e for _, _, e in rows})),
                )
            )
        }
        fresh = []
        for d, so, eid in rows:
            if (d, eid) not in have:
                have.add((d, eid))
                fresh.append({"destination": d, "stream_ordering": so, "event_id": eid})
        if fresh:
            conn.execute(insert(pdus_t), fresh)
            new = len(fresh)
    if position is not None:
        set_position(conn, position)
    return new


def enqueue_edus(conn: Connection, rows: Sequence[tuple[str, str, dict, str | None]]) -> None:
    """Queue ``(destination, edu_type, content, coalesce_key)`` rows."""
    if not rows:
        return
    _ensure_destinations(conn, (d for d, _, _, _ in rows))
    for d, _edu_type, _content, key in rows:
        if key is not None:
            conn.execute(
                delete(edus_t).where(
                    edus_t.c.destination == d,
                    edus_t.c.coalesce_key == key,
                    edus_t.c.txn_id.is_(None),
                )
            )
    conn.execute(
        insert(edus_t),
        [
            {
                "destination": d,
                "edu_type": t,
                "content": orjson.dumps(c).decode(),
                "coalesce_key": k,
            }
            for d, t, c, k in rows
        ],
    )


# --- claiming and completing transactions -------------------------------------------------


def _batch_rows(conn: Connection, destination: str, txn_id: str) -> tuple[list[str], list[dict]]:
    event_ids = [
        r.event_id
        for r in conn.execute(
            select(pdus_t.c.event_id)
            .where(pdus_t.c.destination == destination, pdus_t.c.txn_id == txn_id)
            .order_by(pdus_t.c.stream_ordering, pdus_t.c.id)
        )
    ]
    edus = [
        {"edu_type": r.edu_type, "content": orjson.loads(r.content)}
        for r in conn.execute(
            select(edus_t.c.edu_type, edus_t.c.content)
            .where(edus_t.c.destination == destination, edus_t.c.txn_id == txn_id)
            .order_by(edus_t.c.id)
        )
    ]
    return event_ids, edus


def claim_batch(
    conn: Connection,
    destination: str,
    now_ms: int,
    *,
    max_pdus: int = MAX_PDUS,
    max_edus: int = MAX_EDUS,
) -> Batch | None:
    """The next transaction for ``destination``; None when nothing is queued."""
    row = conn.execute(select(dest_t).where(dest_t.c.destination == destination)).first()
    if row is None:
        return None
    if row.inflight_txn_id is not None:
        event_ids, edus = _batch_rows(conn, destination, row.inflight_txn_id)
        if event_ids or edus:
            return Batch(row.inflight_txn_id, event_ids, edus, resumed=True)
        conn.execute(
            update(dest_t).where(dest_t.c.destination == destination).values(inflight_txn_id=None)
        )
    pdu_ids = [
        r.id
        for r in conn.execute(
            select(pdus_t.c.id)
            .where(pdus_t.c.destination == destination, pdus_t.c.txn_id.is_(None))
            .order_by(pdus_t.c.stream_ordering, pdus_t.c.id)
            .limit(max_pdus)
        )
    ]
    edu_ids = [
        r.id
        for r in conn.execute(
            select(edus_t.c.id)
            .where(edus_t.c.destination == destination, edus_t.c.txn_id.is_(None))
            .order_by(edus_t.c.id)
            .limit(max_edus)
        )
    ]
    if not pdu_ids and not edu_ids:
        return None
    counter = int(row.txn_counter or 0) + 1
    # The time part keeps IDs unique even if this database is ever started afresh (the
    # receiver remembers transaction IDs per origin).
    txn_id = f"{now_ms}_{counter}"
    conn.execute(
        update(dest_t)
        .where(dest_t.c.destination == destination)
        .values(txn_counter=counter, inflight_txn_id=txn_id)
    )
    if pdu_ids:
        conn.execute(update(pdus_t).where(pdus_t.c.id.in_(pdu_ids)).values(txn_id=txn_id))
    if edu_ids:
        conn.execute(update(edus_t).where(edus_t.c.id.in_(edu_ids)).values(txn_id=txn_id))
    event_ids, edus = _batch_rows(conn, destination, txn_id)
    return Batch(txn_id, event_ids, edus, resumed=False)


def _first_rows(
    conn: Connection,
    table: Any,
    destinations: Sequence[str],
    limit: int,
    order: Sequence[Any],
    columns: Sequence[Any],
) -> dict[str, list[Any]]:
    """The first ``limit`` unclaimed rows of each destination (one window-function query)."""
    rn = func.row_number().over(partition_by=table.c.destination, order_by=list(order))
    inner = (
        select(table.c.id, table.c.destination, *columns, rn.label("rn"))
        .where(table.c.destination.in_(list(destinations)), table.c.txn_id.is_(None))
        .subquery()
    )
    out: dict[str, list[Any]] = {}
    for r in conn.execute(
        select(inner).where(inner.c.rn <= limit).order_by(inner.c.destination, inner.c.rn)
    ):
        out.setdefault(r.destination, []).append(r)
    return out


def claim_batches(
    conn: Connection,
    destinations: Sequence[str],
    now_ms: int,
    *,
    max_pdus: int = MAX_PDUS,
    max_edus: int = MAX_EDUS,
) -> dict[str, Batch | None]:
    """``claim_batch`` for each of ``destinations`` (distinct) in one transaction.

    Destinations with a transaction in flight get it again (one by one: a retry after a
    failure or a restart); for the others the statements do not grow with their number:
    one window-function query per table picks the first rows of every destination, and
    one executemany per table marks them with each destination's new ``txnId``."""
    out: dict[str, Batch | None] = {d: None for d in destinations}
    rows = {
        r.destination: r
        for r in conn.execute(select(dest_t).where(dest_t.c.destination.in_(list(destinations))))
    }
    fresh = []
    for d in destinations:
        row = rows.get(d)
        if row is None:
            continue
        if row.inflight_txn_id is not None:
            out[d] = claim_batch(conn, d, now_ms, max_pdus=max_pdus, max_edus=max_edus)
        else:
            fresh.append(d)
    if not fresh:
        return out
    pdus = _first_rows(
        conn, pdus_t, fresh, max_pdus, (pdus_t.c.stream_ordering, pdus_t.c.id), (pdus_t.c.event_id,)
    )
    edus = _first_rows(
        conn, edus_t, fresh, max_edus, (edus_t.c.id,), (edus_t.c.edu_type, edus_t.c.content)
    )
    dest_params, pdu_params, edu_params = [], [], []
    for d in fresh:
        if d not in pdus and d not in edus:
            continue
        counter = int(rows[d].txn_counter or 0) + 1
        txn_id = f"{now_ms}_{counter}"  # as in claim_batch
        dest_params.append({"b_dest": d, "b_counter": counter, "b_txn": txn_id})
        pdu_params += [{"b_id": r.id, "b_txn": txn_id} for r in pdus.get(d, ())]
        edu_params += [{"b_id": r.id, "b_txn": txn_id} for r in edus.get(d, ())]
        out[d] = Batch(
            txn_id,
            [r.event_id for r in pdus.get(d, ())],
            [{"edu_type": r.edu_type, "content": orjson.loads(r.content)} for r in edus.get(d, ())],
            resumed=False,
        )
    if dest_params:
        conn.execute(
            update(dest_t)
            .where(dest_t.c.destination == bindparam("b_dest"))
            .values(txn_counter=bindparam("b_counter"), inflight_txn_id=bindparam("b_txn")),
            dest_params,
        )
    for table, params in ((pdus_t, pdu_params), (edus_t, edu_params)):
        if params:
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(txn_id=bindparam("b_txn")),
                params,
            )
    return out


def complete_txns(conn: Connection, done: Sequence[tuple[str, str]], now_ms: int) -> None:
    """``complete_txn`` for each ``(destination, txn_id)`` (three executemany statements)."""
    if not done:
        return
    params = [{"b_dest": d, "b_txn": t} for d, t in done]
    for table in (pdus_t, edus_t):
        conn.execute(
            delete(table).where(
                table.c.destination == bindparam("b_dest"), table.c.txn_id == bindparam("b_txn")
            ),
            params,
        )
    conn.execute(
        update(dest_t)
        .where(dest_t.c.destination == bindparam("b_dest"))
        .values(
            inflight_txn_id=None,
            last_txn_id=bindparam("b_txn"),
            last_success_ts=now_ms,
            failures=0,
            retry_interval_ms=0,
            next_retry_ts=0,
        ),
        params,
    )


def complete_txn(conn: Connection, destination: str, txn_id: str, now_ms: int) -> None:
    conn.execute(
        delete(pdus_t).where(pdus_t.c.destination == destination, pdus_t.c.txn_id == txn_id)
    )
    conn.execute(
        delete(edus_t).where(edus_t.c.destination == destination, edus_t.c.txn_id == txn_id)
    )
    conn.execute(
        update(dest_t)
        .where(dest_t.c.destination == destination)
        .values(
            inflight_txn_id=None,
            last_txn_id=txn_id,
            last_success_ts=now_ms,
            failures=0,
            retry_interval_ms=0,
            next_retry_ts=0,
        )
    )


def record_failure(conn: Connection, destination: str, state: RetryState) -> None:
    conn.execute(
        update(dest_t)
        .where(dest_t.c.destination == destination)
        .values(
            failures=state.failures,
            retry_interval_ms=state.retry_interval_ms,
            next_retry_ts=state.next_retry_ts,
        )
    )


def reset_retry(conn: Connection, destination: str) -> None:
    conn.execute(
        update(dest_t)
        .where(dest_t.c.destination == destination)
        .values(failures=0, retry_interval_ms=0, next_retry_ts=0)
    )


def load_retry_states(conn: Connection) -> dict[str, tuple[RetryState, bool]]:
    """Every known destination: (retry state, whether anything is queued for it)."""
    queued = {r[0] for r in conn.execute(select(pdus_t.c.destination).distinct())}
    queued |= {r[0] for r in conn.execute(select(edus_t.c.destination).distinct())}
    out = {}
    for r in conn.execute(select(dest_t)):
        out[r.destination] = (
            RetryState(r.failures or 0, r.retry_interval_ms or 0, r.next_retry_ts or 0),
            r.destination in queued,
        )
    return out


def drop_destination(conn: Connection, destination: str) -> int:
    n = conn.execute(delete(pdus_t).where(pdus_t.c.destination == destination)).rowcount
    n += conn.execute(delete(edus_t).where(edus_t.c.destination == destination)).rowcount
    conn.execute(
        update(dest_t).where(dest_t.c.destination == destination).values(inflight_txn_id=None)
    )
    return n


def queue_sizes(conn: Connection, destination: str) -> tuple[int, int]:
    """(PDUs, EDUs) queued for ``destination`` (tests and metrics)."""
    p = (
        conn.execute(
            select(func.count()).select_from(pdus_t).where(pdus_t.c.destination == destination)
        ).scalar()
        or 0
    )
    e = (
        conn.execute(
            select(func.count()).select_from(edus_t).where(edus_t.c.destination == destination)
        ).scalar()
        or 0
    )
    return int(p), int(e)


def destination_row(conn: Connection, destination: str) -> dict | None:
    row = conn.execute(select(dest_t).where(dest_t.c.destination == destination)).first()
    return dict(row._mapping) if row is not None else None


__all__ = [
    "Batch",
    "MAX_EDUS",
    "MAX_PDUS",
    "claim_batch",
    "claim_batches",
    "complete_txn",
    "complete_txns",
    "destination_row",
    "drop_destination",
    "enqueue_edus",
    "enqueue_pdus",
    "events_after",
    "get_position",
    "max_stream_ordering",
    "load_retry_states",
    "queue_sizes",
    "record_failure",
    "reset_retry",
    "set_position",
]
