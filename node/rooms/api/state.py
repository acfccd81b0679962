"""Room state endpoints (client-server API "Getting events for a room" / "Sending events to
a room": ``rooms.yaml`` GET ``/rooms/{roomId}/state[/{eventType}[/{stateKey}]]`` with
``format=content|event``; ``room_state.yaml`` PUT
``/rooms/{roomId}/state/{eventType}[/{stateKey}]``).

The state key defaults to the empty string, and "when an empty string, the trailing slash
on this endpoint is optional".
"""

from __future__ import annotations

from typing import Any

from federation.errors import InvalidParam, NotFound

from ..access import room_view
from .common import V3


def register(router: Any, service: Any) -> None:
    async def get_all(req: Any, roomId: str) -> tuple[int, list]:
        view = await room_view(service, req.user_id, roomId)
        state = await view.state(service)
        return 200, [
            service.format_client_event(ev, requester=req.requester) for ev in state.values()
        ]

    async def get_one(
        req: Any, roomId: str, eventType: str, stateKey: str = ""
    ) -> tuple[int, dict]:
        fmt = req.query("format", "content")
        if fmt not in ("content", "event"):
            raise InvalidParam("format must be 'content' or 'event'")
        view = await room_view(service, req.user_id, roomId)
        state = await view.state(service)
        ev = state.get((eventType, stateKey))
        if ev is None:
            raise NotFound("Event not found.")
        if fmt == "event":
            return 200, service.format_client_event(ev, requester=req.requester)
        return 200, dict(ev.content)

    async def put(req: Any, roomId: str, eventType: str, stateKey: str = "") -> tuple[int, dict]:
        event_id = await service.send_event(
            req.user_id, roomId, eventType, req.json(), state_key=stateKey
        )
        return 200, {"event_id": event_id}

    base = V3 + "/rooms/{roomId}/state"
    router.add("GET", base, get_all)
    for template in (
        base + "/{eventType}",
        base + "/{eventType}/",
        base + "/{eventType}/{stateKey}",
    ):
        router.add("GET", template, get_one)
        router.add("PUT", template, put, rate_limited=True)
