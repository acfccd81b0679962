"""Indexing the events stored before the search index existed.

The migration that adds the index records, in ``event_search_backfill``, the stream
ordering above which every event is indexed as it is written.  At start the node walks
the older events newest first, a chunk per database transaction (so sends queued behind
it on the writer wait for one chunk at most), indexes the searchable ones and moves the
mark down; when nothing is left below it the row is deleted and later starts do nothing.
Progress is logged every ``LOG_EVERY`` chunks, with the position reached.

Events already indexed (backfilled history written live while the walk runs) are
skipped; redacted and hidden events are not indexed at all.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from schema.events import events
from schema.search import event_search, event_search_backfill

from .index import SEARCHED, insert_index_rows, searchable_value

log = logging.getLogger("parta.search")

CHUNK = 500
LOG_EVERY = 20


def backfill_step(conn: Connection, chunk: int = CHUNK) -> tuple[int, int] | None:
    """Index up to ``chunk`` older searchable events; (indexed, new mark) or None when
    there is nothing left (the progress row is then gone)."""
    below = conn.execute(
        select(event_search_backfill.c.below).where(event_search_backfill.c.id == 1)
    ).scalar()
    if below is None:
        return None
    e = events.c
    rows = conn.execute(
        select(e.stream_ordering, e.event_id, e.room_id, e.type, e.state_key, e.sender, e.json)
        .where(
            and_(
                e.stream_ordering < below,
                e.type.in_(list(SEARCHED)),
                e.outlier.is_(False),
                e.rejected_reason.is_(None),
                e.redacted_by.is_(None),
            )
        )
        .order_by(e.stream_ordering.desc())
        .limit(chunk)
    ).all()
    if not rows:
        conn.execute(delete(event_search_backfill))
        return None
    streams = [r.stream_ordering for r in rows]
    done = set(
        conn.execute(
            select(event_search.c.stream_ordering).where(
                event_search.c.stream_ordering.in_(streams)
            )
        ).scalars()
    )
    out = []
    for r in rows:
        if r.stream_ordering in done:
            continue
        try:
            pdu = orjson.loads(r.json)
        except orjson.JSONDecodeError:
            continue
        content = pdu.get("content") if isinstance(pdu, dict) else None
        if not isinstance(content, dict):
            continue
        value = searchable_value(r.type, content, r.state_key)
        if value is not None:
            key = SEARCHED[r.type][0]
            out.append((r.stream_ordering, r.event_id, r.room_id, r.sender, r.type, key, value))
    if out:
        insert_index_rows(conn, out)
    mark = min(streams)
    conn.execute(
        update(event_search_backfill).where(event_search_backfill.c.id == 1).values(below=mark)
    )
    return len(out), mark


async def run_backfill(db: Any) -> int:
    """Walk until done (at start, in the background); how many events were indexed."""
    total = chunks = 0
    while True:
        step = await db.run(backfill_step)
        if step is None:
            break
        total += step[0]
        chunks += 1
        if chunks % LOG_EVERY == 1:
            log.info("event=search_backfill indexed=%d below=%d", total, step[1])
    if chunks:
        log.info("event=search_backfill_done indexed=%d", total)
    return total
