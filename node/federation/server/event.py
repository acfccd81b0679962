"""``GET /_matrix/federation/v1/event/{eventId}`` (spec: server-server API "Retrieving
events", ``events.yaml``): a transaction holding the one PDU.  Soft-failed events are
returned ("A soft failed event should be returned in response to federation requests
where appropriate (e.g. in /event/<event_id>)"); rejected ones are not.  The requesting
server must be allowed to read the room (``access.py``); an event it may not see is
served redacted.  Server ACLs: an origin the event's room's current ``m.room.server_acl``
denies gets 403 (``acl_check``; the spec's general "When a remote server makes a request,
it MUST be verified to be allowed by the server ACLs")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E

from ..access import ServerVisibility, require_room_access
from ..acl_check import require_allowed
from ..xmatrix_auth import serve
from .common import envelope, event_in_room

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_event(req: Any, origin: str, eventId: str) -> tuple[int, dict]:
        ev = await event_in_room(fctx, eventId)
        room = await require_room_access(fctx.rooms, ev.room_id, origin)
        require_allowed(room, origin)  # server ACLs
        pdus = await ServerVisibility(fctx.rooms, room, origin).serve([ev])
        return 200, envelope(fctx, pdus)

    serve(routes, E.EVENT, get_event)
