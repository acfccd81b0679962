"""``POST /_matrix/federation/v1/get_missing_events/{roomId}`` (spec: server-server API
"Backfilling and retrieving missing events", ``backfill.yaml``): "a breadth-first walk of
the prev_events for the latest_events, ignoring any events in earliest_events and stopping
at the limit" (default 10; ``min_depth`` default 0).  Returned oldest first.  Soft-failed
events appear only when reached from the requested events (as the spec says)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import BadJSON
from federation.transport import endpoints as E
from node.rooms.event_meta import meta

from ..access import ServerVisibility, require_room_access
from ..xmatrix_auth import serve
from .backfill import walk_back

if TYPE_CHECKING:
    from ..context import FederationContext

MAX_LIMIT = 100


def _id_list(body: dict, key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadJSON(f"'{key}' must be a list of event IDs")
    return value


def _int(body: dict, key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadJSON(f"'{key}' must be an integer")
    return value


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_missing_events(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        body = req.json()
        latest = _id_list(body, "latest_events")
        earliest = _id_list(body, "earliest_events")
        limit = max(0, min(_int(body, "limit", 10), MAX_LIMIT))
        min_depth = _int(body, "min_depth", 0)
        room = await require_room_access(fctx.rooms, roomId, origin)
        events = await walk_back(
            fctx,
            roomId,
            latest,
            limit,
            exclude=set(earliest),
            min_depth=min_depth,
            include_start=False,
        )
        events.sort(key=lambda e: (e.depth, meta(e).stream_ordering or 0))
        pdus = await ServerVisibility(fctx.rooms, room, origin).serve(events)
        return 200, {"events": pdus}

    serve(routes, E.GET_MISSING_EVENTS, get_missing_events)
