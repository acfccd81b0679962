"""``GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=`` (spec: server-server API
"Backfilling and retrieving missing events", ``backfill.yaml``): the events given in ``v``
and those that preceded them (walking ``prev_events``, deepest first), up to ``limit`` in
total.  Events the requesting server may not see are redacted."""

from __future__ import annotations

import heapq
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from federation.errors import MatrixError
from federation.events.model import Event
from federation.transport import endpoints as E

from ..access import ServerVisibility, require_room_access
from ..xmatrix_auth import serve
from .common import envelope

if TYPE_CHECKING:
    from ..context import FederationContext

MAX_LIMIT = 100


async def walk_back(
    fctx: FederationContext,
    room_id: str,
    start: list[str],
    limit: int,
    exclude: AbstractSet[str] = frozenset(),
    min_depth: int = 0,
    include_start: bool = True,
) -> list:
    """Events reached from ``start`` through ``prev_events``, deepest first, at most
    ``limit``; ``exclude`` stops the walk (``get_missing_events``)."""
    out: list[Event] = []
    seen: set[str] = set(exclude)
    heap: list[tuple[int, str]] = []
    first = await fctx.rooms.get_events([e for e in start if e not in seen])
    pending: list[str] = []
    for eid, ev in first.items():
        if ev.room_id != room_id:
            continue
        seen.add(eid)
        if include_start:
            heapq.heappush(heap, (-ev.depth, eid))
        else:
            pending.extend(p for p in ev.prev_event_ids if p not in seen)
    if pending:
        for eid, ev in (await fctx.rooms.get_events(pending)).items():
            if ev.room_id == room_id and eid not in seen:
                seen.add(eid)
                heapq.heappush(heap, (-ev.depth, eid))
    cache: dict[str, Event] = dict(first)
    while heap and len(out) < limit:
        _, eid = heapq.heappop(heap)
        found = cache.pop(eid, None) or await fctx.rooms.get_event(eid)
        if found is None or found.depth < min_depth:
            continue
        ev = found
        if ev.rejected_reason is None:
            out.append(ev)
        prevs = [p for p in ev.prev_event_ids if p not in seen]
        if prevs:
            for pid, pev in (await fctx.rooms.get_events(prevs)).items():
                if pev.room_id == room_id:
                    seen.add(pid)
                    cache[pid] = pev
                    heapq.heappush(heap, (-pev.depth, pid))
    return out


def register(routes: Any, fctx: FederationContext) -> None:
    async def backfill(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        start = [v for v in req.args.get("v", []) if v]
        if not start:
            raise MatrixError("Missing query parameter 'v'", errcode="M_MISSING_PARAM")
        limit = req.query_int("limit")
        if limit is None:
            raise MatrixError("Missing query parameter 'limit'", errcode="M_MISSING_PARAM")
        limit = max(0, min(limit, MAX_LIMIT))
        room = await require_room_access(fctx.rooms, roomId, origin)
        events = await walk_back(fctx, roomId, start, limit)
        pdus = await ServerVisibility(fctx.rooms, room, origin).serve(events)
        return 200, envelope(fctx, pdus)

    serve(routes, E.BACKFILL, backfill)
