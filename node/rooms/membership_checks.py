"""Client-side checks of membership changes, for clear errors before building an event.

Spec: client-server API "Room membership" (joining.yaml, inviting.yaml, leaving.yaml,
kicking.yaml, banning.yaml: the listed 403 reasons) mirroring auth rule 5 (v10/v11: 4) of
the room versions.  The auth rules remain the authority -- every event is still checked
with ``federation.auth.rules.check_auth`` -- these checks only turn the common refusals
into the messages the spec's examples show, and detect no-op requests ("The user has been
invited to join the room, or was already invited to the room" -> 200 without an event).
"""

from __future__ import annotations

from typing import Mapping

from federation.auth.membership import join_rule_of, membership_of
from federation.auth.power_levels import named_level, user_power_level
from federation.errors import Forbidden
from federation.room_versions import RoomVersion

PROCEED = True
NO_OP = False


def check_membership_change(
    state: Mapping,
    room_version: RoomVersion,
    sender: str,
    target: str,
    membership: str,
    *,
    action: str | None = None,
) -> bool:
    """Raise ``Forbidden`` with a clear message, or return PROCEED / NO_OP.

    ``action`` names the endpoint for leave events sent about someone else: ``"kick"`` or
    ``"unban"`` (both are ``membership: leave``).
    """
    sender_m = membership_of(sender, state)
    target_m = membership_of(target, state)

    def level(user: str) -> float:
        return user_power_level(user, state, room_version)

    if membership == "join":
        if sender != target:
            raise Forbidden("You cannot make another user join a room")
        if target_m == "ban":
            raise Forbidden("You are banned from this room")
        if target_m in ("join", "invite"):
            return PROCEED
        rule = join_rule_of(state)
        if rule == "public":
            return PROCEED
        if rule in ("invite", "knock"):
            raise Forbidden("You are not invited to this room.")
        return PROCEED  # restricted etc.: the auth rules decide

    if membership == "invite":
        if sender_m != "join":
            raise Forbidden("You are not in this room, so you cannot invite others to it")
        if target_m == "ban":
            raise Forbidden(f"{target} is banned from the room")
        if target_m == "join":
            raise Forbidden(f"{target} is already in the room")
        if target_m == "invite":
            return NO_OP
        if level(sender) < named_level("invite", state):
            raise Forbidden(
                "You do not have a high enough power level to invite users to this room"
            )
        return PROCEED

    if membership == "leave" and sender == target and action is None:
        if target_m in ("join", "invite", "knock"):
            return PROCEED
        if target_m in ("leave", "ban"):
            return NO_OP  # already out of the room
        raise Forbidden("You are not a member of this room")

    if membership == "leave" and action == "unban":
        if sender_m != "join":
            raise Forbidden("You are not in this room")
        if target_m != "ban":
            raise Forbidden(f"{target} is not banned from this room")
        if level(sender) < named_level("ban", state):
            raise Forbidden("You do not have a high enough power level to unban from this room")
        return PROCEED

    if membership == "leave":  # kick (leave about someone else)
        if sender_m != "join":
            raise Forbidden("You are not in this room")
        if target_m == "ban":
            raise Forbidden(f"{target} is banned; unban them instead")
        if target_m not in ("join", "invite", "knock"):
            raise Forbidden(f"{target} is not in the room")
        if level(sender) < named_level("kick", state) or level(sender) <= level(target):
            raise Forbidden("You do not have a high enough power level to kick from this room")
        return PROCEED

    if membership == "ban":
        if sender_m != "join":
            raise Forbidden("You are not in this room")
        if level(sender) < named_level("ban", state) or level(sender) <= level(target):
            raise Forbidden("You do not have a high enough power level to ban from this room")
        if target_m == "ban":
            return NO_OP
        return PROCEED

    if membership == "knock":
        if sender != target:
            raise Forbidden("You cannot knock on behalf of another user")
        return PROCEED

    raise Forbidden(f"Unknown membership {membership!r}")
