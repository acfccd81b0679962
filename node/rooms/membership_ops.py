"""Membership changes and profile propagation.

Spec: client-server API "Room membership" (join, invite, leave, kick, ban, unban:
``joining.yaml``, ``inviting.yaml``, ``leaving.yaml``, ``kicking.yaml``, ``banning.yaml``),
``m.room.member`` (``displayname``/``avatar_url`` from the profile, ``reason``,
``is_direct``), "Profiles" > "Events on Change of Profile Information" (a profile change
sends updated ``m.room.member`` events into every room the user is joined to).
"""

from __future__ import annotations

import logging

from federation.auth.power_levels import named_level, user_power_level
from federation.errors import Forbidden, InvalidParam, MatrixError, NotFound
from federation.events.model import Event
from federation.identifiers import is_valid_user_id

from .create_ops import check_local_user, member_profile
from .membership_checks import check_membership_change

log = logging.getLogger("parta.rooms.membership")

MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")


async def update_membership(
    service,
    sender: str,
    room_id: str,
    target: str,
    membership: str,
    reason: str | None = None,
    *,
    action: str | None = None,
    extra_content: dict | None = None,
) -> Event | None:
    if not is_valid_user_id(target):
        raise InvalidParam(f"{target!r} is not a valid user ID")
    if membership not in MEMBERSHIPS:
        raise InvalidParam(f"Unknown membership {membership!r}")
    if reason is not None and not isinstance(reason, str):
        raise MatrixError("'reason' must be a string", errcode="M_BAD_JSON")
    room = await service.get_room(room_id)
    if membership == "invite" and not await check_local_user(service, target):
        raise NotFound(f"User {target} does not exist")

    content: dict = {"membership": membership}
    if membership in ("join", "invite"):
        content.update(await member_profile(service, target))
    if reason:
        content["reason"] = reason
    if extra_content:
        content.update(extra_content)
    if membership == "join" and sender == target:
        via = await restricted_join_authoriser(service, room, target)
        if via is not None:
            content["join_authorised_via_users_server"] = via

    def precheck(room) -> bool:
        return check_membership_change(
            room.state, room.room_version, sender, target, membership, action=action
        )

    return await service.create_event(
        room.room_id, sender, "m.room.member", content, state_key=target, precheck=precheck
    )


async def restricted_join_authoriser(service, room, user_id: str) -> str | None:
    """For a ``restricted``/``knock_restricted`` room the user may join through membership
    of an allowed room: a local joined member who may invite, to name in
    ``join_authorised_via_users_server`` (client-server API "Restricted rooms"; auth rule
    5.3.5.2).  None when no authoriser is needed; 403 when the conditions are not met."""
    rules = room.content("m.room.join_rules")
    if rules.get("join_rule") not in ("restricted", "knock_restricted") or room.membership(
        user_id
    ) in ("join", "invite", "ban"):
        return None
    allowed = [
        a.get("room_id")
        for a in rules.get("allow") or []
        if isinstance(a, dict) and a.get("type") == "m.room_membership"
    ]
    joined = set(await service.joined_room_ids(user_id))
    if not any(r in joined for r in allowed):
        if rules.get("join_rule") == "knock_restricted":
            return None  # the auth rules give the precise refusal
        raise Forbidden(
            "You are not allowed to join this room: you are not a member of "
            "any room that grants access"
        )
    invite_level = named_level("invite", room.state)
    candidates = sorted(
        (-user_power_level(u, room.state, room.room_version), u)
        for u in room.joined
        if u.partition(":")[2] == service.server_name
        and user_power_level(u, room.state, room.room_version) >= invite_level
    )
    if not candidates:
        raise Forbidden("No member of this room on this server can authorise your join")
    return candidates[0][1]


async def set_member_state(
    service, sender: str, room_id: str, target: str, content: dict
) -> Event | None:
    """``PUT /rooms/{roomId}/state/m.room.member/{userId}``: the client writes the content."""
    membership = content.get("membership")
    if not isinstance(membership, str):
        raise MatrixError("m.room.member content needs a 'membership' string", errcode="M_BAD_JSON")
    if not is_valid_user_id(target):
        raise InvalidParam(f"{target!r} is not a valid user ID")
    room = await service.room_for_sender(room_id)
    action = None
    if membership == "leave" and sender != target:
        action = "unban" if room.membership(target) == "ban" else "kick"

    def precheck(room) -> bool:
        # A join that changes nothing but the profile is a real change: always proceed.
        if membership == "join" and sender == target and room.membership(target) == "join":
            return True
        return check_membership_change(
            room.state, room.room_version, sender, target, membership, action=action
        )

    return await service.create_event(
        room.room_id, sender, "m.room.member", dict(content), state_key=target, precheck=precheck
    )


async def propagate_profile(service, user_id: str, profile: dict) -> None:
    """Send an updated join event into each room ``user_id`` is joined to."""
    for room_id in await service.joined_room_ids(user_id):
        try:
            room = await service.get_room(room_id)
            current = room.get("m.room.member", user_id)
            if current is None or current.content.get("membership") != "join":
                continue
            content = {k: v for k, v in current.content.items() if k != "reason"}
            for key in ("displayname", "avatar_url"):
                value = (profile or {}).get(key)
                if isinstance(value, str) and value:
                    content[key] = value
                else:
                    content.pop(key, None)
            if content == dict(current.content):
                continue

            def still_joined(room, _uid=user_id) -> bool:
                return room.membership(_uid) == "join"

            await service.create_event(
                room_id, user_id, "m.room.member", content, state_key=user_id, precheck=still_joined
            )
        except Exception:  # one room failing must not stop the others
            log.exception("could not update %s's member event in %s", user_id, room_id)
