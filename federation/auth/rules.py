"""The authorization rules of room versions 10, 11 and 12, as pure functions.

Spec: ``content/rooms/v10.md``, ``v11.md``, ``v12.md`` "Authorisation rules";
server-server API "Checks performed on receipt of a PDU", "Auth events selection",
"Rejection".

Rules are numbered as in room version 12 (see ``errors.py`` for how v10/v11 numbers
follow); ``AuthError.rule`` and its message carry the number of the event's own version.

The checks are split the way a receiving server uses them:

* ``check_state_independent_auth_rules(event, auth_events)`` -- everything that looks only
  at the event and the events it lists in ``auth_events``: rule 1 (create), v12 rule 2
  (room ID names an accepted create event) and rule 3 (v10/v11: 2).  Run once per event.
* ``check_state_dependent_auth_rules(event, state)`` -- rules 4..11 (v10/v11: 3..10)
  against a state map ``(type, state_key) -> Event``: the auth events, the state before
  the event, or the current state (soft failure).  ``state`` must contain the
  ``m.room.create`` event under ``("m.room.create", "")`` in every version.
* ``check_auth(event, state)`` -- both, for events whose ``auth_events`` were selected
  from ``state`` (events we create, tests).

Signatures, hashes and the event format are checked before these (transport / event
validation); ``is_signed_by`` lets a caller enforce rule 5.2.1 here as well.
"""

from __future__ import annotations

from typing import Mapping

from ..events.model import Event
from .create import check_create_event
from .errors import AuthError, rule_label
from .membership import SignatureCheck, check_member_event, membership_of
from .power_level_changes import check_power_levels_event
from .power_levels import event_send_level, named_level, user_power_level
from .selection import CREATE, MEMBER, POWER_LEVELS, THIRD_PARTY_INVITE, auth_types_for_event
from .user_ids import user_id_domain

__all__ = [
    "AuthError",
    "rule_label",
    "check_auth",
    "check_state_independent_auth_rules",
    "check_state_dependent_auth_rules",
]


def check_state_independent_auth_rules(event: Event, auth_events: Mapping[str, Event]) -> None:
    """Rules 1, 2 (v12) and 3 (v10/v11: 2): raise ``AuthError`` unless they pass.

    ``auth_events`` maps event IDs to events and must hold every event the PDU lists in
    ``auth_events``; for v12 it must also hold the room's create event (which is never
    listed).  Extra entries are ignored.
    """
    rv = event.room_version

    # 1. If type is m.room.create: (create.py)
    if event.type == CREATE:
        check_create_event(event)
        return

    listed_ids = event.auth_event_ids
    if not isinstance(listed_ids, list) or not all(isinstance(i, str) for i in listed_ids):
        raise AuthError(rv, "3", "auth_events must be a list of event IDs")

    if rv.event_format.room_id_is_create_event_hash:
        # v12: 2. If the event's room_id is not an event ID for an accepted (not
        # rejected) m.room.create event, with the sigil ! instead of $, reject.
        room_id = event.room_id
        create = None
        if isinstance(room_id, str) and room_id.startswith("!"):
            create = auth_events.get("$" + room_id[1:])
        if (
            create is None
            or create.type != CREATE
            or create.rejected_reason is not None
            or create.event_id != "$" + room_id[1:]
        ):
            raise AuthError(rv, "2", f"room_id {room_id!r} is not an accepted create event")

    # 3. (v10/v11: 2.) Considering the event's auth_events:
    # We can only consider what we hold: a listed event we do not have fails the rules.
    missing = [i for i in listed_ids if i not in auth_events]
    if missing:
        raise AuthError(rv, "3", f"auth events not available: {', '.join(missing)}")
    listed = [auth_events[i] for i in listed_ids]

    # 3.1 If there are duplicate entries for a given type and state_key pair, reject.
    seen: set[tuple[str, object]] = set()
    for auth_event in listed:
        pair = (auth_event.type, auth_event.state_key)
        if pair in seen:
            raise AuthError(rv, "3.1", f"duplicate auth event for {pair}")
        seen.add(pair)

    # 3.2 If there are entries whose type and state_key don't match those specified by
    # the auth events selection algorithm, reject.  (v12: m.room.create MUST NOT be
    # selected; v10/v11 require it.)
    allowed = set(
        auth_types_for_event(rv, event.type, event.sender, event.state_key, event.content)
    )
    for auth_event in listed:
        if not auth_event.is_state or auth_event.key not in allowed:
            raise AuthError(
                rv,
                "3.2",
                f"auth event {auth_event.event_id} ({auth_event.type}, "
                f"{auth_event.state_key!r}) is not in the auth events selection",
            )

    # 3.3 If there are entries which were themselves rejected under the checks performed
    # on receipt of a PDU, reject.
    for auth_event in listed:
        if auth_event.rejected_reason is not None:
            raise AuthError(rv, "3.3", f"auth event {auth_event.event_id} was rejected")

    # v10/v11 only: 2.4 If there is no m.room.create event among the entries, reject.
    if rv.auth.create_in_auth_events and (CREATE, "") not in seen:
        raise AuthError(rv, "3.4", "no m.room.create among the auth events")

    # 3.5 If any event in auth_events has a room_id which does not match that of the
    # event being authorised, reject.
    for auth_event in listed:
        if auth_event.room_id != event.room_id:
            raise AuthError(
                rv, "3.5", f"auth event {auth_event.event_id} is in room {auth_event.room_id}"
            )


def check_state_dependent_auth_rules(
    event: Event,
    state: Mapping[tuple[str, str], Event],
    *,
    is_signed_by: SignatureCheck | None = None,
) -> None:
    """Rules 4..11 (v10/v11: 3..10) against ``state``: raise ``AuthError`` unless allowed.

    ``is_signed_by(event, server_name)``, when given, enforces rule 5.2.1 (see
    ``membership.py``); otherwise the transport is trusted to have checked that signature.
    """
    rv = event.room_version

    # 1. A create event is decided by rule 1 alone.
    if event.type == CREATE:
        check_create_event(event)
        return

    create = state.get((CREATE, ""))
    if create is None:
        # v10/v11 2.4 ("no m.room.create event among the entries"); v12 rule 2.
        raise AuthError(
            rv,
            "2" if rv.event_format.room_id_is_create_event_hash else "3.4",
            "no m.room.create event in the state",
        )
    if rv.event_format.room_id_is_create_event_hash and create.room_id != event.room_id:
        # v12: 2. The room ID must be the create event's ID.
        raise AuthError(rv, "2", f"room_id {event.room_id!r} does not match the create event")

    sender = event.sender
    # 4. (v10/v11: 3.) If the content of the m.room.create event in the room state has the
    # property m.federate set to false, and the sender domain of the event does not match
    # the sender domain of the create event, reject.
    if create.content.get("m.federate") is False and user_id_domain(sender) != user_id_domain(
        create.sender
    ):
        raise AuthError(rv, "4", "room is not federated (m.federate is false)")

    # 5. (v10/v11: 4.) If type is m.room.member: (membership.py)
    if event.type == MEMBER:
        check_member_event(event, state, create, is_signed_by=is_signed_by)
        return

    # 6. (5.) If the sender's current membership state is not join, reject.
    if membership_of(sender, state) != "join":
        raise AuthError(rv, "6", f"{sender} is not joined to the room")

    sender_level = user_power_level(sender, state, rv)

    # 7. (6.) If type is m.room.third_party_invite:
    if event.type == THIRD_PARTY_INVITE:
        # 7.1 Allow if and only if sender's current power level is greater than or equal
        # to the invite level.
        if sender_level >= named_level("invite", state):
            return
        raise AuthError(rv, "7.1", f"{sender} is below the invite level")

    # 8. (7.) If the event type's required power level is greater than the sender's power
    # level, reject.  (This is also the only rule for m.room.redaction: the redact level
    # is not part of the auth rules; nor is there any special rule for m.room.aliases.)
    required = event_send_level(event.type, event.is_state, state)
    if required > sender_level:
        raise AuthError(
            rv,
            "8",
            f"sending {event.type} needs power level {required}, {sender} has {sender_level}",
        )

    # 9. (8.) If the event has a state_key that starts with an @ and does not match the
    # sender, reject.
    state_key = event.state_key
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != sender:
        raise AuthError(rv, "9", "state_key starting with '@' must be the sender")

    # 10. (9.) If type is m.room.power_levels: (power_level_changes.py)
    if event.type == POWER_LEVELS:
        check_power_levels_event(event, state)
        return

    # 11. (10.) Otherwise, allow.


def check_auth(
    event: Event,
    state: Mapping[tuple[str, str], Event],
    *,
    auth_events: Mapping[str, Event] | None = None,
    is_signed_by: SignatureCheck | None = None,
) -> None:
    """All rules: state-independent ones against ``auth_events`` (default: the events of
    ``state`` by ID, which suits events whose auth events were selected from ``state``),
    then the state-dependent ones against ``state``."""
    if auth_events is None:
        auth_events = {ev.event_id: ev for ev in state.values()}
    check_state_independent_auth_rules(event, auth_events)
    check_state_dependent_auth_rules(event, state, is_signed_by=is_signed_by)
