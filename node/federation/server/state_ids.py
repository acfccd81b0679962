"""``GET /_matrix/federation/v1/state_ids/{roomId}?event_id=`` (spec: server-server API
"Retrieving events", ``events.yaml``): ``/state`` as event IDs (``pdu_ids``,
``auth_chain_ids``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E

from ..xmatrix_auth import serve
from .common import auth_chain_events
from .state import state_at

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_state_ids(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        state = await state_at(fctx, req, origin, roomId)
        chain = await auth_chain_events(fctx, state.values(), roomId)
        return 200, {"pdu_ids": list(state.values()), "auth_chain_ids": [e.event_id for e in chain]}

    serve(routes, E.STATE_IDS, get_state_ids)
