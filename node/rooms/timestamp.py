"""The event nearest to a point in time (client-server API "Timestamp to event",
``room_event_by_timestamp.yaml``; server-server API ``GET /timestamp_to_event``).

Candidates are the room's accepted, non-outlier events ordered by ``origin_server_ts``
(ties by stream order) at or after ``ts`` for ``dir=f``, at or before it for ``dir=b``.
For a user, the first candidate the history visibility rules let them see is the
answer; candidates are read ``BATCH`` at a time and at most ``MAX_CANDIDATES`` are
looked at, so a room where a user may see almost nothing cannot make one request scan
its whole history (the answer is then 404, as if there were no event).

The client endpoint may also ask the room's other servers (``RoomHooks.timestamp_to_event``)
when this copy of the room may lack the answer: nothing was found, or the found event
comes right after a gap (one of its ``prev_events`` is not in our history: typically the
first event after we joined, when ``ts`` is older).  The remote event is kept when it is
strictly nearer to ``ts`` and the user may see it.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from federation.errors import InvalidParam, NotFound
from federation.events.model import Event
from schema.events import events

log = logging.getLogger("parta.rooms.timestamp")

BATCH = 50
MAX_CANDIDATES = 1000


def _missing_prevs(conn: Connection, prev_ids: list[str]) -> bool:
    """Is any of ``prev_ids`` not an event of our history (unknown or an outlier)?"""
    c = events.c
    held = conn.execute(
        select(c.event_id).where(c.event_id.in_(prev_ids), c.outlier.is_(False))
    ).all()
    return len(held) < len(set(prev_ids))


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


async def next_to_gap(service: Any, event_id: str) -> bool:
    """Does our history lack events right before ``event_id`` (one database read)?"""
    ev = (await service.get_events([event_id])).get(event_id)
    if ev is None:
        return True
    prevs = list(ev.prev_event_ids)[:20]
    if not prevs:
        return False  # the create event: nothing is older
    return bool(await service.db.run(_missing_prevs, prevs))


async def nearest_event_or_remote(
    service: Any, room_id: str, ts: int, direction: str, visible: VisibleFilter
) -> dict[str, Any]:
    """``nearest_event``, completed from the room's other servers when our copy may be
    incomplete there (``service.hooks.timestamp_to_event``; None: local only)."""
    remote = service.hooks.timestamp_to_event
    if remote is None:
        return await nearest_event(service, room_id, ts, direction, visible)
    local: dict[str, Any] | None
    try:
        local = await nearest_event(service, room_id, ts, direction, visible)
    except NotFound:
        local = None
    if local is not None and not await next_to_gap(service, local["event_id"]):
        return local
    try:
        ev = await remote(room_id, ts, direction)
    except Exception:  # noqa: BLE001 - other servers are a best effort: keep our answer
        log.exception("event=remote_timestamp_to_event_failed room_id=%s", room_id)
        ev = None
    if ev is not None and (
        local is None or abs(ev.origin_server_ts - ts) < abs(local["origin_server_ts"] - ts)
    ):
        if await visible([ev]):
            return {"event_id": ev.event_id, "origin_server_ts": ev.origin_server_ts}
    if local is None:
        raise NotFound("Unable to find an event in the given direction")
    return local
