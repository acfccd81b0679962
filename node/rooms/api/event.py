"""``GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}`` (client-server API ``rooms.yaml``:
404 "The event was not found or you do not have permission to read this event")."""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError, NotFound

from ..access import may_read_history
from .common import V3


def register(router: Any, service: Any) -> None:
    async def get_event(req: Any, roomId: str, eventId: str) -> tuple[int, dict]:
        try:
            await may_read_history(service, req.user_id, roomId)
        except MatrixError:
            raise NotFound("Event not found.") from None
        ev = await service.get_event(eventId)
        if ev is None or ev.room_id != roomId or ev.rejected_reason is not None:
            raise NotFound("Event not found.")
        visible = await service.filter_events_for_user(req.user_id, roomId, [ev])
        if not visible:
            raise NotFound("Event not found.")
        out = service.format_client_event(ev, requester=req.requester)
        await service.relations.add_bundles([(roomId, out)], req.requester)
        return 200, out

    router.add("GET", V3 + "/rooms/{roomId}/event/{eventId}", get_event)
