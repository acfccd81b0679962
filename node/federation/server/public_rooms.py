"""``GET``/``POST /_matrix/federation/v1/publicRooms`` (spec: server-server API "Published
Room Directory", ``public_rooms.yaml``): this server's published rooms (never other
servers'), with ``limit``/``since`` and, for POST, ``filter.generic_search_term`` and
``filter.room_types``; the same listing as the client API's (node/rooms/directory_ops)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E
from node.rooms import directory_ops

from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_public(req: Any, origin: str) -> tuple[int, dict]:
        return 200, await directory_ops.list_public_rooms(
            fctx.rooms, limit=req.query_int("limit", None, minimum=0), since=req.query("since")
        )

    async def post_public(req: Any, origin: str) -> tuple[int, dict]:
        parsed = directory_ops.parse_public_rooms_body(req.json(allow_empty=True))
        return 200, await directory_ops.list_public_rooms(
            fctx.rooms,
            limit=parsed.limit,
            since=parsed.since,
            search_term=parsed.search_term or None,
            room_types=parsed.room_types,
        )

    serve(routes, E.PUBLIC_ROOMS, get_public)
    serve(routes, E.PUBLIC_ROOMS_POST, post_public)
