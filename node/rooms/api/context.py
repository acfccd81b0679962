"""``GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}`` (client-server API "Event
context", ``event_context.yaml``)."""

from __future__ import annotations

from typing import Any

from ..pagination import event_context
from .common import V3
from .filter_param import room_event_filter

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def register(router: Any, service: Any) -> None:
    async def context(req: Any, roomId: str, eventId: str) -> tuple[int, dict]:
        limit = req.query_int("limit", DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
        ctx = await event_context(
            service, req.user_id, roomId, eventId, limit=limit, event_filter=room_event_filter(req)
        )

        def fmt(ev):
            return service.format_client_event(ev, requester=req.requester)

        event = fmt(ctx.event)
        before = [fmt(e) for e in ctx.before]
        after = [fmt(e) for e in ctx.after]
        await service.relations.add_bundles(
            [(roomId, d) for d in [event, *before, *after]], req.requester
        )
        return 200, {
            "start": ctx.start,
            "end": ctx.end,
            "event": event,
            "events_before": before,
            "events_after": after,
            "state": [fmt(e) for e in ctx.state],
        }

    router.add("GET", V3 + "/rooms/{roomId}/context/{eventId}", context)
