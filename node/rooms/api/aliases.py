"""Room aliases (client-server API "Room aliases", ``directory.yaml``):
``PUT/GET/DELETE /directory/room/{roomAlias}`` and ``GET /rooms/{roomId}/aliases``."""

from __future__ import annotations

from typing import Any

from .. import aliases_ops
from .common import V3


def register(router: Any, service: Any) -> None:
    async def get_alias(req: Any, roomAlias: str) -> tuple[int, dict]:
        return 200, await aliases_ops.get_alias(service, roomAlias)

    async def put_alias(req: Any, roomAlias: str) -> tuple[int, dict]:
        body = req.json()
        await aliases_ops.set_alias(service, req.user_id, roomAlias, body.get("room_id"))
        return 200, {}

    async def delete_alias(req: Any, roomAlias: str) -> tuple[int, dict]:
        await aliases_ops.delete_alias(service, req.user_id, roomAlias)
        return 200, {}

    async def room_aliases(req: Any, roomId: str) -> tuple[int, dict]:
        return 200, {"aliases": await aliases_ops.room_aliases(service, req.user_id, roomId)}

    router.add("GET", V3 + "/directory/room/{roomAlias}", get_alias, auth=False)
    router.add("PUT", V3 + "/directory/room/{roomAlias}", put_alias)
    router.add("DELETE", V3 + "/directory/room/{roomAlias}", delete_alias)
    router.add("GET", V3 + "/rooms/{roomId}/aliases", room_aliases, rate_limited=True)
