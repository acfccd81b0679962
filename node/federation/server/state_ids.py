"""``GET /_matrix/federation/v1/state_ids/{roomId}?event_id=`` (spec: server-server API
"Retrieving events", ``events.yaml``): ``/state`` as event IDs (``pdu_ids``,
``auth_chain_ids``)."""

from __future__ import annotations

from typing import Any

from .common import V1, auth_chain_events
from .state import state_at


def register(routes: Any, fctx: Any) -> None:
    async def get_state_ids(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        state = await state_at(fctx, req, origin, roomId)
        chain = await auth_chain_events(fctx, state.values(), roomId)
        return 200, {"pdu_ids": list(state.values()),
                     "auth_chain_ids": [e.event_id for e in chain]}

    routes.add("GET", V1 + "/state_ids/{roomId}", get_state_ids)
