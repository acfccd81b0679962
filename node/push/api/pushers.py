"""Pusher endpoints (client-server API "Client behaviour", ``pusher.yaml``,
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushers):
``GET /pushers`` (the caller's own) and ``POST /pushers/set``."""

from __future__ import annotations

from typing import Any

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def get_pushers(req: Any) -> tuple[int, dict]:
        return 200, {"pushers": [p.client_view() for p in service.pushers.for_user(req.user_id)]}

    async def set_pusher(req: Any) -> tuple[int, dict]:
        await service.pushers.set(req.user_id, req.json())
        return 200, {}

    router.add("GET", V3 + "/pushers", get_pushers)
    router.add("POST", V3 + "/pushers/set", set_pusher, rate_limited=True)
