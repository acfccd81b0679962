"""``GET /_matrix/federation/v1/hierarchy/{roomId}`` (spec: server-server API "Spaces",
``space_hierarchy.yaml``): the federation version of the client ``/hierarchy``.

No pagination: the answer is the room itself (``room``: its summary plus
``children_state``, the room's ``m.space.child`` events as stripped state with
``origin_server_ts``; empty when the room is not a space), ``children`` (summaries of the
child rooms this server knows and the requesting server "could feasibly peek/join") and
``inaccessible_children`` (children this server knows that the requester cannot
peek/join).  Children this server does not know are left out ("Rooms which the responding
server cannot provide details on will be outright excluded").  The requesting server
filters further for its user (e.g. ``restricted`` rooms carry ``allowed_room_ids``).

Which rooms a *server* may peek/join (our reading of the client rules, for a server):
1. never when the room's server ACL denies it (it could not join; ACLs, "Server Access
   Control Lists");
2. the requesting server already has a member joined or invited;
3. join rule ``public``, ``knock``, ``knock_restricted`` or ``restricted`` (the allow
   conditions depend on the requesting server's users; it checks them);
4. ``m.room.history_visibility`` ``world_readable``.
The requested room itself must pass the same test, else 404 ``M_NOT_FOUND`` (as for an
unknown room: "The room is not known to the server or the requesting server is unable to
peek/join it").  The endpoint is not among the ACL-protected prefixes, so an ACL denial
is reported as that 404, not 403.

Work is capped: at most ``MAX_CHILDREN`` child events are considered (in the spec's
child order), so a huge space costs a bounded number of room look-ups; and the answer
carries at most ``MAX_STATE_EVENTS`` stripped child events in all -- a child space whose
list would pass that is left out of ``children`` (never cut short, which would hide
grandchildren), and the requesting server asks that space itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import MatrixError, NotFound
from federation.transport import endpoints as E
from node.rooms.client_format import strip_state_event
from node.rooms.hierarchy_ops import valid_children
from node.rooms.summary import room_summary

from ..access import server_of
from ..acl_check import server_allowed
from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext
    from node.rooms.service import RoomService
    from node.rooms.state_cache import RoomState

MAX_CHILDREN = 250
MAX_STATE_EVENTS = 2_000
_OPEN_RULES = ("public", "knock", "knock_restricted", "restricted")


def server_can_peek_or_join(room: RoomState, origin: str) -> bool:
    """Rules 1-4 of the module docstring (the member scan of rule 2 last: it is the only
    one that costs more than a lookup)."""
    if not server_allowed(room, origin):  # 1
        return False
    if room.content("m.room.join_rules").get("join_rule") in _OPEN_RULES:  # 3
        return True
    hv = room.content("m.room.history_visibility").get("history_visibility")
    if hv == "world_readable":  # 4
        return True
    if any(server_of(u) == origin for u in room.joined):  # 2
        return True
    return any(
        etype == "m.room.member"
        and server_of(skey) == origin
        and ev.content.get("membership") == "invite"
        for (etype, skey), ev in room.state.items()
    )


def children_state(room: RoomState, suggested_only: bool) -> list[dict]:
    """The room's valid ``m.space.child`` events (ordered, capped), stripped, with
    ``origin_server_ts``; empty for a room that is not a space."""
    if room.room_type != "m.space":
        return []
    return [
        dict(strip_state_event(ev), origin_server_ts=ev.origin_server_ts)
        for ev in valid_children(room, suggested_only)[:MAX_CHILDREN]
    ]


def space_summary(room: RoomState, suggested_only: bool) -> dict:
    out = room_summary(room, full=True)
    out["children_state"] = children_state(room, suggested_only)
    return out


async def answer(rooms: RoomService, origin: str, room_id: str, suggested_only: bool) -> dict:
    try:
        root = await rooms.get_room(room_id)
    except NotFound:
        raise NotFound("Room does not exist.") from None
    if not server_can_peek_or_join(root, origin):
        raise NotFound("Room does not exist.")
    top = space_summary(root, suggested_only)
    children: list[dict] = []
    inaccessible: list[str] = []
    seen = {room_id}
    budget = MAX_STATE_EVENTS - len(top["children_state"])
    for stripped in top["children_state"]:
        child_id = stripped["state_key"]
        if child_id in seen:
            continue
        seen.add(child_id)
        try:
            child = await rooms.get_room(child_id)
        except NotFound:
            continue  # unknown here: left out, not "inaccessible"
        if server_can_peek_or_join(child, origin):
            summary = space_summary(child, suggested_only)
            if len(summary["children_state"]) <= budget:
                budget -= len(summary["children_state"])
                children.append(summary)
        else:
            inaccessible.append(child_id)
    return {"room": top, "children": children, "inaccessible_children": inaccessible}


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_hierarchy(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        if not isinstance(roomId, str) or not roomId.startswith("!"):
            raise MatrixError("roomId must be a room ID ('!...')", errcode="M_INVALID_PARAM")
        suggested_only = req.query_bool("suggested_only", False)
        return 200, await answer(fctx.rooms, origin, roomId, suggested_only)

    serve(routes, E.HIERARCHY, get_hierarchy)
