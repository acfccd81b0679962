"""``GET /rooms/{roomId}/members`` (``at``, ``membership``, ``not_membership``) and
``GET /rooms/{roomId}/joined_members`` (client-server API ``rooms.yaml``)."""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden, InvalidParam
from node.stream_tokens import events_position

from ..access import room_view
from .common import V3

MEMBERSHIPS = ("join", "invite", "knock", "leave", "ban")


def _membership_param(req: Any, name: str) -> str | None:
    value = req.query(name)
    if value is not None and value not in MEMBERSHIPS:
        raise InvalidParam(f"'{name}' must be one of {', '.join(MEMBERSHIPS)}")
    return value


def member_matches(membership: str | None, wanted: str | None, unwanted: str | None) -> bool:
    """The spec's rule: with both parameters, *either* membership is ``wanted`` *or* it is
    not ``unwanted``; with one, just that condition; with none, everything."""
    if wanted is not None and unwanted is not None:
        return membership == wanted or membership != unwanted
    if wanted is not None:
        return membership == wanted
    if unwanted is not None:
        return membership != unwanted
    return True


def register(router: Any, service: Any) -> None:
    async def members(req: Any, roomId: str) -> tuple[int, dict]:
        wanted = _membership_param(req, "membership")
        unwanted = _membership_param(req, "not_membership")
        view = await room_view(service, req.user_id, roomId)
        at = req.query("at")
        if at is not None:
            position = events_position(at)
            if view.at is not None:
                position = min(position, view.at)  # never past the user's leave
            state = await service.get_state_at(roomId, position)
        else:
            state = await view.state(service)
        chunk = [
            service.format_client_event(ev, requester=req.requester)
            for (etype, _), ev in state.items()
            if etype == "m.room.member"
            and member_matches(ev.content.get("membership"), wanted, unwanted)
        ]
        return 200, {"chunk": chunk}

    async def joined_members(req: Any, roomId: str) -> tuple[int, dict]:
        room = await service.get_room(roomId)
        if room.membership(req.user_id) != "join":
            raise Forbidden("You aren't a member of the room.")
        joined = {}
        for user_id, ev in room.members():
            if ev.content.get("membership") != "join":
                continue
            info = {}
            if isinstance(ev.content.get("displayname"), str):
                info["display_name"] = ev.content["displayname"]
            if isinstance(ev.content.get("avatar_url"), str):
                info["avatar_url"] = ev.content["avatar_url"]
            joined[user_id] = info
        return 200, {"joined": joined}

    router.add("GET", V3 + "/rooms/{roomId}/members", members)
    router.add("GET", V3 + "/rooms/{roomId}/joined_members", joined_members)
