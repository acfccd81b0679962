"""Published room directory endpoints (client-server API ``list_public_rooms.yaml``):
``GET /publicRooms`` (no auth), ``POST /publicRooms`` (filtered),
``GET/PUT /directory/list/room/{roomId}``.  With ``server=`` another server, the page
comes from that server over federation (``hooks.remote_directory``,
node/federation/remote/remote_directory.py)."""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, MatrixError

from .. import directory_ops
from .common import V3, optional_str


def _remote_server(service: Any, server: str | None) -> str | None:
    """``server`` when it names another server (its directory is asked over federation,
    ``hooks.remote_directory``); None for ours or none given."""
    if server is None or server == service.server_name:
        return None
    if service.hooks.remote_directory is None:
        raise MatrixError(
            "This server does not federate: other servers' room directories are not available",
            errcode="M_UNRECOGNIZED",
            http_status=400,
        )
    return server


def register(router: Any, service: Any) -> None:
    async def get_public(req: Any) -> tuple[int, dict]:
        limit = req.query_int("limit", None, minimum=0)
        remote = _remote_server(service, req.query("server"))
        if remote is not None:
            return 200, await service.hooks.remote_directory.public_rooms(
                remote, limit=limit, since=req.query("since")
            )
        return 200, await directory_ops.list_public_rooms(
            service, limit=limit, since=req.query("since")
        )

    async def post_public(req: Any) -> tuple[int, dict]:
        remote = _remote_server(service, req.query("server"))
        body = req.json(allow_empty=True)
        limit = body.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise BadJSON("'limit' must be an integer")
        flt = body.get("filter") or {}
        if not isinstance(flt, dict):
            raise BadJSON("'filter' must be an object")
        term = optional_str(flt, "generic_search_term")
        room_types = flt.get("room_types")
        if room_types is not None and (
            not isinstance(room_types, list)
            or not all(t is None or isinstance(t, str) for t in room_types)
        ):
            raise BadJSON("'filter.room_types' must be a list of strings or null")
        if remote is not None:
            return 200, await service.hooks.remote_directory.public_rooms(
                remote,
                limit=limit,
                since=optional_str(body, "since"),
                search_term=term,
                room_types=room_types,
            )
        return 200, await directory_ops.list_public_rooms(
            service,
            limit=limit,
            since=optional_str(body, "since"),
            search_term=term,
            room_types=room_types,
        )

    async def get_visibility(req: Any, roomId: str) -> tuple[int, dict]:
        return 200, {"visibility": await directory_ops.get_visibility(service, roomId)}

    async def put_visibility(req: Any, roomId: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        visibility = optional_str(body, "visibility") or "public"
        await directory_ops.set_visibility(service, req.user_id, roomId, visibility)
        return 200, {}

    router.add("GET", V3 + "/publicRooms", get_public, auth=False)
    router.add("POST", V3 + "/publicRooms", post_public)
    router.add("GET", V3 + "/directory/list/room/{roomId}", get_visibility, auth=False)
    router.add("PUT", V3 + "/directory/list/room/{roomId}", put_visibility)
