"""``GET /_matrix/client/v1/room_summary/{roomIdOrAlias}`` (client-server API "Room
Summaries", ``room_summary.yaml``, Matrix 1.15).

Who may see a summary: a user with any membership in the room (``membership`` is then
part of the answer), and anyone -- unauthenticated callers too, which the spec allows --
for rooms whose join rule is ``public``/``knock``/``knock_restricted`` or whose history
is ``world_readable``; a signed-in user also for a ``restricted``/``knock_restricted``
room they could join through a room they are in (the space hierarchy's rule,
``hierarchy_ops.can_see``).  Everything else, unknown rooms and unknown aliases is the
same 404 ``M_NOT_FOUND``, so a private room's existence does not leak.  Rooms this node
does not hold are not asked of the ``via`` servers yet (404).  A banned user sees the
summary only where an outsider would.
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


def open_to_anyone(room: RoomState) -> bool:
    """The spec's conditions for answering without authentication."""
    rule = room.content("m.room.join_rules").get("join_rule")
    hv = room.content("m.room.history_visibility").get("history_visibility")
    return rule in _OPEN_RULES or hv == "world_readable"


async def summary_for(service: Any, user_id: str | None, room_id_or_alias: str) -> dict:
    not_found = NotFound("Room not found.")
    if room_id_or_alias.startswith("#"):
        try:
            room_id = (await get_alias(service, room_id_or_alias))["room_id"]
        except MatrixError:
            raise not_found from None
    elif room_id_or_alias.startswith("!"):
        room_id = room_id_or_alias
    else:
        raise MatrixError(
            "Expected a room ID or a room alias", errcode="M_INVALID_PARAM", http_status=400
        )
    try:
        room = await service.get_room(room_id)
    except MatrixError:
        raise not_found from None
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
        return 200, await summary_for(service, user_id, roomIdOrAlias)

    router.add(
        "GET",
        V1 + "/room_summary/{roomIdOrAlias}",
        get_summary,
        auth_optional=True,
        rate_limited=True,
    )
