"""Auth events selection: which state an event's ``auth_events`` must point at.

Spec: server-server API "Auth events selection" (changed in v1.16: whether the create
event is selected depends on the room version -- not in v12, where the room ID implies it).

The result is used twice: to pick the ``auth_events`` of events we create, and by auth
rule 3.2 (v10/v11: 2.2) to reject events listing anything outside the selection.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..room_versions import RoomVersion

CREATE = "m.room.create"
POWER_LEVELS = "m.room.power_levels"
MEMBER = "m.room.member"
JOIN_RULES = "m.room.join_rules"
THIRD_PARTY_INVITE = "m.room.third_party_invite"


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """The (type, state_key) pairs an event of this shape may list in ``auth_events``.

    Every pair is "if any": callers include only those present in the state.  The
    ``m.room.create`` event itself has no auth events.
    """
    if event_type == CREATE:
        return []
    if not isinstance(content, Mapping):
        content = {}
    selected: list[tuple[str, str]] = []

    def add(key: tuple[str, str]) -> None:
        if key not in selected:
            selected.append(key)

    # "Depending on the room version, the m.room.create event" (not in v12).
    if room_version.auth.create_in_auth_events:
        add((CREATE, ""))
    # "The current m.room.power_levels event, if any."
    add((POWER_LEVELS, ""))
    # "The sender's current m.room.member event, if any."
    add((MEMBER, sender))

    if event_type == MEMBER:
        membership = content.get("membership")
        # "The target's current m.room.member event, if any."
        if isinstance(state_key, str):
            add((MEMBER, state_key))
        # "If membership is join, invite or knock, the current m.room.join_rules event."
        if membership in ("join", "invite", "knock"):
            add((JOIN_RULES, ""))
        # "If membership is invite and content contains a third_party_invite property, the
        # current m.room.third_party_invite event with state_key matching
        # content.third_party_invite.signed.token, if any."
        if membership == "invite":
            tpi = content.get("third_party_invite")
            signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
            token = signed.get("token") if isinstance(signed, Mapping) else None
            if isinstance(token, str):
                add((THIRD_PARTY_INVITE, token))
        # "If membership is join, content.join_authorised_via_users_server is present, and
        # the room version supports restricted rooms, the m.room.member event with
        # state_key matching content.join_authorised_via_users_server."
        if membership == "join" and room_version.auth.restricted_join_rule:
            via = content.get("join_authorised_via_users_server")
            if isinstance(via, str):
                add((MEMBER, via))
    return selected
