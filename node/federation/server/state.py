"""``GET /_matrix/federation/v1/state/{roomId}?event_id=`` (spec: server-server API
"Retrieving events", ``events.yaml``): the full state before the event ("prior to
considering any state changes induced by the requested event") and its auth chain.

403 when the requesting server may not read the room; 404 when the event is unknown or
no state is known at it (an outlier)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import MatrixError
from federation.transport import endpoints as E

from ..access import require_room_access
from ..xmatrix_auth import serve
from .common import auth_chain_events, event_in_room

if TYPE_CHECKING:
    from node.federation.context import FederationContext


async def state_at(fctx: FederationContext, req: Any, origin: str, room_id: str) -> dict:
    """(type, state_key) -> event ID before ``event_id``, after the access checks."""
    event_id = req.query("event_id")
    if not event_id:
        raise MatrixError("Missing query parameter 'event_id'", errcode="M_MISSING_PARAM")
    await require_room_access(fctx.rooms, room_id, origin)
    await event_in_room(fctx, event_id, room_id)
    return await fctx.state_store.get_state_ids_before(event_id)


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_state(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        state = await state_at(fctx, req, origin, roomId)
        evs = await fctx.rooms.get_events(state.values())
        chain = await auth_chain_events(fctx, state.values(), roomId)
        return 200, {
            "pdus": [dict(evs[e].pdu) for e in state.values() if e in evs],
            "auth_chain": [dict(e.pdu) for e in chain],
        }

    serve(routes, E.STATE, get_state)
