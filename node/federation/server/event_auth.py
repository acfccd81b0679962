"""``GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}`` (spec: server-server API
"Retrieving event authorisation information", ``event_auth.yaml``): the complete auth
chain of the event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E

from ..access import require_room_access
from ..xmatrix_auth import serve
from .common import auth_chain_events, event_in_room

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    async def event_auth(req: Any, origin: str, roomId: str, eventId: str) -> tuple[int, dict]:
        await require_room_access(fctx.rooms, roomId, origin)
        ev = await event_in_room(fctx, eventId, roomId)
        chain = await auth_chain_events(fctx, [ev.event_id], roomId)
        return 200, {"auth_chain": [dict(e.pdu) for e in chain]}

    serve(routes, E.EVENT_AUTH, event_auth)
