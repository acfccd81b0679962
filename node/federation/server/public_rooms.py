"""``GET``/``POST /_matrix/federation/v1/publicRooms`` (spec: server-server API "Published
Room Directory", ``public_rooms.yaml``): this server's published rooms (never other
servers'), with ``limit``/``since`` and, for POST, ``filter.generic_search_term`` and
``filter.room_types``; the same listing as the client API's (node/rooms/directory_ops)."""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON
from node.rooms import directory_ops

from .common import V1


def register(routes: Any, fctx: Any) -> None:
    async def get_public(req: Any, origin: str) -> tuple[int, dict]:
        return 200, await directory_ops.list_public_rooms(
            fctx.rooms, limit=req.query_int("limit", None, minimum=0),
            since=req.query("since"))

    async def post_public(req: Any, origin: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        limit = body.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise BadJSON("'limit' must be an integer")
        since = body.get("since")
        if since is not None and not isinstance(since, str):
            raise BadJSON("'since' must be a string")
        flt = body.get("filter") or {}
        if not isinstance(flt, dict):
            raise BadJSON("'filter' must be an object")
        term = flt.get("generic_search_term")
        if term is not None and not isinstance(term, str):
            raise BadJSON("'filter.generic_search_term' must be a string")
        room_types = flt.get("room_types")
        if room_types is not None and (not isinstance(room_types, list) or not all(
                t is None or isinstance(t, str) for t in room_types)):
            raise BadJSON("'filter.room_types' must be a list of strings or null")
        return 200, await directory_ops.list_public_rooms(
            fctx.rooms, limit=limit, since=since, search_term=term or None,
            room_types=room_types)

    routes.add("GET", V1 + "/publicRooms", get_public)
    routes.add("POST", V1 + "/publicRooms", post_public)
