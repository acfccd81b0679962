"""The event nearest to a point in time (client-server API "Timestamp to event",
``room_event_by_timestamp.yaml``; server-server API ``GET /timestamp_to_event``).

Candidates are the room's accepted, non-outlier events ordered by ``origin_server_ts``
(ties by stream order) at or after ``ts`` for ``dir=f``, at or before it for ``dir=b``.
For a user, the first candidate the history visibility rules let them see is the
answer; candidates are read ``BATCH`` at a time and at most ``MAX_CANDIDATES`` are
looked at, so a room where a user may see almost nothing cannot make one request scan
its whole history (the answer is then 404, as if there were no event).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from federation.errors import InvalidParam, NotFound
from federation.events.model import Event
from schema.events import events

BATCH = 50
MAX_CANDIDATES = 1000


def parse_dir(value: str | None) -> str:
    if value not in ("f", "b"):
        raise InvalidParam("'dir' must be 'f' or 'b'")
    return value


def candidate_ids(
    conn: Connection, room_id: str, ts: int, direction: str, after: tuple[int, int] | None
) -> list[tuple[str, int, int]]:
    """(event_id, origin_server_ts, stream_ordering) of the next ``BATCH`` candidates,
    continuing after the (ts, stream) position ``after``."""
    c = events.c
    cond = [c.room_id == room_id, c.outlier.is_(False), c.rejected_reason.is_(None)]
    if direction == "f":
        cond.append(c.origin_server_ts >= ts)
        if after is not None:
            cond.append(
                (c.origin_server_ts > after[0])
                | and_(c.origin_server_ts == after[0], c.stream_ordering > after[1])
            )
        order = (c.origin_server_ts.asc(), c.stream_ordering.asc())
    else:
        cond.append(c.origin_server_ts <= ts)
        if after is not None:
            cond.append(
                (c.origin_server_ts < after[0])
                | and_(c.origin_server_ts == after[0], c.stream_ordering < after[1])
            )
        order = (c.origin_server_ts.desc(), c.stream_ordering.desc())
    rows = conn.execute(
        select(c.event_id, c.origin_server_ts, c.stream_ordering)
        .where(and_(*cond))
        .order_by(*order)
        .limit(BATCH)
    )
    return [(r[0], r[1], r[2]) for r in rows]


VisibleFilter = Callable[[Sequence[Event]], Awaitable[list[Event]]]


async def nearest_event(
    service: Any, room_id: str, ts: int, direction: str, visible: VisibleFilter
) -> dict[str, Any]:
    """``{"event_id", "origin_server_ts"}`` of the nearest event ``visible`` keeps."""
    after: tuple[int, int] | None = None
    seen = 0
    while seen < MAX_CANDIDATES:
        rows = await service.db.run(candidate_ids, room_id, ts, direction, after)
        if not rows:
            break
        seen += len(rows)
        evs = await service.get_events([r[0] for r in rows])
        ordered = [evs[r[0]] for r in rows if r[0] in evs]
        kept = {ev.event_id for ev in await visible(ordered)}
        for event_id, origin_ts, _stream in rows:
            if event_id in kept:
                return {"event_id": event_id, "origin_server_ts": origin_ts}
        if len(rows) < BATCH:
            break
        after = (rows[-1][1], rows[-1][2])
    raise NotFound("Unable to find an event in the given direction")
