"""``GET /_matrix/client/v1/room_summary/{roomIdOrAlias}`` (client-server API "Room
Summaries", ``room_summary.yaml``, Matrix 1.15).

Who may see a summary: a user with any membership in the room (``membership`` is then
part of the answer), and anyone -- unauthenticated callers too, which the spec allows --
for rooms whose join rule is ``public``/``knock``/``knock_restricted`` or whose history
is ``world_readable``; a signed-in user also for a ``restricted``/``knock_restricted``
room they could join through a room they are in (the space hierarchy's rule,
``hierarchy_ops.can_see``).  Everything else, unknown rooms and unknown aliases is the
same 404 ``M_NOT_FOUND``, so a private room's existence does not leak.  A banned user
sees the summary only where an outsider would.

Rooms this node does not hold (no local member) are asked of the ``via`` servers (and,
for another server's alias, the servers the alias resolves to) with the federation
``/hierarchy`` of the room -- the same cached look-up the space hierarchy uses
(``service.hooks.remote_hierarchy``) -- and shown under the same rule: public,
knockable, ``world_readable``, ``restricted`` through a room the user is in, or the user
is invited or knocking.  Only signed-in users make the node ask other servers.
"""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError, NotFound

from ..aliases_ops import get_alias
from ..hierarchy_ops import can_see
from ..state_cache import RoomState
from ..summary import room_summary
from .common import V1

_OPEN_RULES = ("public", "knock", "knock_restricted")
MAX_VIA = 10  # the look-up itself asks at most 3 of them


def open_to_anyone(room: RoomState) -> bool:
    """The spec's conditions for answering without authentication."""
    rule = room.content("m.room.join_rules").get("join_rule")
    hv = room.content("m.room.history_visibility").get("history_visibility")
    return rule in _OPEN_RULES or hv == "world_readable"


async def _resolve(
    service: Any, user_id: str | None, room_id_or_alias: str
) -> tuple[str, list[str]]:
    """(room ID, servers that know it) of a room ID or alias; 404 for unknown aliases."""
    if room_id_or_alias.startswith("!"):
        return room_id_or_alias, []
    if not room_id_or_alias.startswith("#"):
        raise MatrixError(
            "Expected a room ID or a room alias", errcode="M_INVALID_PARAM", http_status=400
        )
    try:
        if room_id_or_alias.endswith(":" + service.server_name) or user_id is None:
            return (await get_alias(service, room_id_or_alias))["room_id"], []
        directory = service.hooks.remote_directory
        if directory is None:
            raise NotFound("Room not found.")
        found = await directory.resolve_alias(room_id_or_alias)
    except MatrixError:
        raise NotFound("Room not found.") from None
    servers = found.get("servers")
    if not isinstance(servers, list):
        servers = []
    return found["room_id"], [s for s in servers if isinstance(s, str)]


async def _remote_summary(
    service: Any, user_id: str | None, room_id: str, via: list[str]
) -> dict[str, Any]:
    remote = service.hooks.remote_hierarchy
    if user_id is None or remote is None or not via:
        raise NotFound("Room not found.")
    hit, room = remote.cached(room_id, False)
    if not hit:
        room = await remote.fetch(room_id, via, False)
    if room is None:
        raise NotFound("Room not found.")
    membership = None
    for rid, m, _ev in await service.get_rooms_for_user(user_id, ["invite", "knock"]):
        if rid == room_id:
            membership = m
    joined = set(await service.joined_room_ids(user_id))
    if membership is None and not room.visible_to(joined):
        raise NotFound("Room not found.")
    out = dict(room.summary)
    out["membership"] = membership or "leave"
    return out


async def summary_for(
    service: Any, user_id: str | None, room_id_or_alias: str, via: list[str] | None = None
) -> dict:
    not_found = NotFound("Room not found.")
    room_id, servers = await _resolve(service, user_id, room_id_or_alias)
    try:
        room = await service.get_room(room_id)
    except MatrixError:
        return await _remote_summary(service, user_id, room_id, [*(via or []), *servers])
    membership = room.membership(user_id) if user_id is not None else None
    if membership == "ban":
        allowed = open_to_anyone(room)
    elif membership is not None or open_to_anyone(room):
        allowed = True
    elif user_id is not None:
        allowed = can_see(room, user_id, set(await service.joined_room_ids(user_id)))
    else:
        allowed = False
    if not allowed:
        raise not_found
    out = room_summary(room, full=True)
    if membership is not None:
        out["membership"] = membership
    elif user_id is not None:
        out["membership"] = "leave"
    return out


def register(router: Any, service: Any) -> None:
    async def get_summary(req: Any, roomIdOrAlias: str) -> tuple[int, dict]:
        user_id = req.requester.user_id if req.requester is not None else None
        via = req.args.get("via") or []
        return 200, await summary_for(service, user_id, roomIdOrAlias, via[:MAX_VIA])

    router.add(
        "GET",
        V1 + "/room_summary/{roomIdOrAlias}",
        get_summary,
        auth_optional=True,
        rate_limited=True,
    )
