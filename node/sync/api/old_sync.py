"""The deprecated sync endpoints (client-server API ``old_sync.yaml``,
``room_initial_sync.yaml``, ``peeking_events.yaml``): ``GET /initialSync``, ``GET
/events``, ``GET /events/{eventId}``, ``GET /rooms/{roomId}/initialSync``.  The work is
``node/sync/old_sync.py``."""

from __future__ import annotations

from typing import Any

from ..old_sync import DEFAULT_LIMIT, MAX_LIMIT, MAX_TIMEOUT_MS, OldSync

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    old = OldSync(service)

    async def initial_sync(req: Any) -> tuple[int, dict]:
        limit = req.query_int("limit", DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
        archived = req.query_bool("archived", False)
        return 200, await old.initial_sync(req.requester, limit or 0, archived)

    async def room_initial_sync(req: Any, roomId: str) -> tuple[int, dict]:
        limit = req.query_int("limit", DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
        return 200, await old.room_initial_sync(req.requester, roomId, limit or 0)

    async def events(req: Any) -> tuple[int, dict]:
        timeout = req.query_int("timeout", 0, minimum=0, maximum=MAX_TIMEOUT_MS)
        return 200, await old.events(
            req.requester, req.query("from"), timeout or 0, req.query("room_id")
        )

    async def event(req: Any, eventId: str) -> tuple[int, dict]:
        return 200, await old.get_event(req.requester, eventId)

    router.add("GET", V3 + "/initialSync", initial_sync, rate_limited=True)
    router.add("GET", V3 + "/rooms/{roomId}/initialSync", room_initial_sync, rate_limited=True)
    router.add("GET", V3 + "/events", events)
    router.add("GET", V3 + "/events/{eventId}", event)
