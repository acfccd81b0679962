"""Authorization rule 5 (v10/v11: rule 4): ``m.room.member`` events.

Spec: rooms v10/v11/v12 "Authorisation rules", rule 5 (numbered as in v12; subtract one
from the first number for v10/v11).  Version differences inside this rule:

* 5.3.1: v10 compares ``state_key`` with ``content.creator`` of the create event, v11+
  with the create event's ``sender`` (v12 too: additional creators do not count here).
* 5.3.5 and 5.7.1 accept ``knock_restricted`` from v10 on (all versions handled here).

Rule 5 always decides: it allows (returns) or rejects (raises ``AuthError``).

``join_authorised_via_users_server`` (5.2.1): whether the event is validly signed by that
user's server is a cryptographic check done by the transport when it verifies the PDU's
signatures; callers that have verified it may pass ``is_signed_by`` so that the rule is
enforced here too.  Without it, 5.2.1 is skipped and only the membership/power
condition of 5.3.5.2 applies.
"""

from __future__ import annotations

from typing import Callable, Mapping

from ..events.model import Event, StateKey
from .errors import AuthError
from .power_levels import named_level, user_power_level
from .selection import JOIN_RULES, MEMBER
from .third_party_invite import check_third_party_invite
from .user_ids import is_valid_user_id, user_id_domain

SignatureCheck = Callable[[Event, str], bool]

# Join rule assumed when the state has no m.room.join_rules event (or its content has no
# join_rule key): the client-server API's room default, and what deployed servers assume.
DEFAULT_JOIN_RULE = "invite"


def membership_of(user_id: str, state: Mapping[StateKey, Event]) -> str | None:
    """``user_id``'s current membership in ``state`` (None when it has no member event)."""
    if not isinstance(user_id, str):
        return None
    member = state.get((MEMBER, user_id))
    if member is None:
        return None
    return member.content.get("membership")


def join_rule_of(state: Mapping[StateKey, Event]) -> object:
    """The room's ``join_rule`` as found in the state: any JSON value, not only a string.

    A present value that is not a string (a number, null, a list, ...) is returned as it
    is: it matches none of the named rules, so rule 5.3.7 rejects the join and 5.7.1 the
    knock.  Reading it as "invite" would let invited users in where deployed servers
    reject them, and the rooms' states would diverge.  Only an absent event or key
    means the default.
    """
    event = state.get((JOIN_RULES, ""))
    if event is None:
        return DEFAULT_JOIN_RULE
    return event.content.get("join_rule", DEFAULT_JOIN_RULE)


def _original_creator(create: Event) -> object:
    rv = create.room_version
    if rv.auth.implicit_room_creator:
        return create.sender  # v11+: the sender of the m.room.create
    return create.content.get("creator")  # v10: content.creator


def check_member_event(
    event: Event,
    state: Mapping[StateKey, Event],
    create: Event,
    *,
    is_signed_by: SignatureCheck | None = None,
) -> None:
    rv = event.room_version
    content = event.content

    # 5.1 If there is no state_key property, or no membership property in content, reject.
    if not isinstance(event.state_key, str) or "membership" not in content:
        raise AuthError(rv, "5.1", "m.room.member needs a state_key and content.membership")

    # 5.2 If content has a join_authorised_via_users_server key:
    #   5.2.1 If the event is not validly signed by the homeserver of the user ID denoted
    #   by the key, reject.
    if "join_authorised_via_users_server" in content and is_signed_by is not None:
        via = content["join_authorised_via_users_server"]
        server = user_id_domain(via) if is_valid_user_id(via) else None
        if server is None or not is_signed_by(event, server):
            raise AuthError(
                rv, "5.2.1", "not signed by the server of join_authorised_via_users_server"
            )

    membership = content["membership"]
    sender, target = event.sender, event.state_key
    sender_membership = membership_of(sender, state)
    target_membership = membership_of(target, state)

    if membership == "join":
        _check_join(event, state, create, sender_membership)
    elif membership == "invite":
        # 5.4.1 If content has a third_party_invite property: (see third_party_invite.py)
        if "third_party_invite" in content:
            check_third_party_invite(event, state)
            return
        # 5.4.2 If the sender's current membership state is not join, reject.
        if sender_membership != "join":
            raise AuthError(rv, "5.4.2", f"{sender} is not joined to the room")
        # 5.4.3 If target user's current membership state is join or ban, reject.
        if target_membership in ("join", "ban"):
            raise AuthError(rv, "5.4.3", f"{target} is already {target_membership}")
        # 5.4.4 If the sender's power level is greater than or equal to the invite level,
        # allow.
        if user_power_level(sender, state, rv) >= named_level("invite", state):
            return
        # 5.4.5 Otherwise, reject.
        raise AuthError(rv, "5.4.5", f"{sender} is below the invite level")
    elif membership == "leave":
        # 5.5.1 If the sender matches state_key, allow if and only if that user's current
        # membership state is invite, join, or knock.
        if sender == target:
            if sender_membership in ("invite", "join", "knock"):
                return
            raise AuthError(
                rv, "5.5.1", f"cannot leave with current membership {sender_membership!r}"
            )
        # 5.5.2 If the sender's current membership state is not join, reject.
        if sender_membership != "join":
            raise AuthError(rv, "5.5.2", f"{sender} is not joined to the room")
        sender_level = user_power_level(sender, state, rv)
        # 5.5.3 If the target user's current membership state is ban, and the sender's
        # power level is less than the ban level, reject.
        if target_membership == "ban" and sender_level < named_level("ban", state):
            raise AuthError(rv, "5.5.3", f"{sender} is below the ban level (unban)")
        # 5.5.4 If the sender's power level is greater than or equal to the kick level,
        # and the target user's power level is less than the sender's power level, allow.
        if (
            sender_level >= named_level("kick", state)
            and user_power_level(target, state, rv) < sender_level
        ):
            return
        # 5.5.5 Otherwise, reject.
        raise AuthError(rv, "5.5.5", f"{sender} is below the kick level or not above {target}")
    elif membership == "ban":
        # 5.6.1 If the sender's current membership state is not join, reject.
        if sender_membership != "join":
            raise AuthError(rv, "5.6.1", f"{sender} is not joined to the room")
        # 5.6.2 If the sender's power level is greater than or equal to the ban level, and
        # the target user's power level is less than the sender's power level, allow.
        sender_level = user_power_level(sender, state, rv)
        if (
            sender_level >= named_level("ban", state)
            and user_power_level(target, state, rv) < sender_level
        ):
            return
        # 5.6.3 Otherwise, reject.
        raise AuthError(rv, "5.6.3", f"{sender} is below the ban level or not above {target}")
    elif membership == "knock":
        # 5.7.1 If the join_rule is anything other than knock or knock_restricted, reject.
        # (v10 added knock_restricted.)
        join_rule = join_rule_of(state)
        if join_rule not in ("knock", "knock_restricted"):
            raise AuthError(rv, "5.7.1", f"join rule {join_rule!r} does not allow knocking")
        # 5.7.2 If sender does not match state_key, reject.
        if sender != target:
            raise AuthError(rv, "5.7.2", "sender does not match state_key")
        # 5.7.3 If the sender's current membership is not ban, invite, or join, allow.
        if sender_membership not in ("ban", "invite", "join"):
            return
        # 5.7.4 Otherwise, reject.
        raise AuthError(rv, "5.7.4", f"cannot knock while {sender_membership}")
    else:
        # 5.8 Otherwise, the membership is unknown. Reject.
        raise AuthError(rv, "5.8", f"unknown membership {membership!r}")


def _check_join(
    event: Event, state: Mapping[StateKey, Event], create: Event, sender_membership: str | None
) -> None:
    """Rule 5.3: ``membership`` is ``join``."""
    rv = event.room_version
    sender, target = event.sender, event.state_key

    # 5.3.1 If the only previous event is an m.room.create and the state_key is the
    # creator (v10: content.creator; v11+: the sender of the m.room.create), allow.
    prev = event.prev_event_ids
    if (
        isinstance(prev, list)
        and len(prev) == 1
        and prev[0] == create.event_id
        and target == _original_creator(create)
    ):
        return
    # 5.3.2 If the sender does not match state_key, reject.
    if sender != target:
        raise AuthError(rv, "5.3.2", "sender does not match state_key")
    # 5.3.3 If the sender is banned, reject.
    if sender_membership == "ban":
        raise AuthError(rv, "5.3.3", f"{sender} is banned")

    join_rule = join_rule_of(state)
    # 5.3.4 If the join_rule is invite or knock then allow if membership state is invite
    # or join.
    if join_rule in ("invite", "knock"):
        if sender_membership in ("invite", "join"):
            return
    # 5.3.5 If the join_rule is restricted or knock_restricted (changed in v10):
    elif join_rule in ("restricted", "knock_restricted"):
        # 5.3.5.1 If membership state is join or invite, allow.
        if sender_membership in ("join", "invite"):
            return
        # 5.3.5.2 If the join_authorised_via_users_server key in content is not a user
        # with sufficient permission to invite other users or is not a joined member of
        # the room, reject.
        via = event.content.get("join_authorised_via_users_server")
        if not isinstance(via, str) or membership_of(via, state) != "join":
            raise AuthError(
                rv, "5.3.5.2", "join_authorised_via_users_server is not a joined member"
            )
        if user_power_level(via, state, rv) < named_level("invite", state):
            raise AuthError(rv, "5.3.5.2", "join_authorised_via_users_server cannot invite users")
        # 5.3.5.3 Otherwise, allow.
        return
    # 5.3.6 If the join_rule is public, allow.
    elif join_rule == "public":
        return
    # 5.3.7 Otherwise, reject.
    raise AuthError(
        rv,
        "5.3.7",
        f"join rule {join_rule!r} does not let {sender} (membership {sender_membership!r}) join",
    )
