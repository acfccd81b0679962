"""Reading power levels out of room state (with the spec's defaults).

Spec: server-server API "Checks performed on receipt of a PDU" -> "Definitions"
(required power level; invite/kick/ban/redact levels); client-server API
``m.room.power_levels`` (defaults: users_default 0, events_default 0, state_default 50,
kick/ban/redact 50, invite 0; without a power levels event the room creator has 100 in
versions 1-11); room version 12 "room creators" (create sender plus
``additional_creators``, infinitely powerful, whether or not power levels exist).

``state`` everywhere here is a mapping ``(type, state_key) -> Event``.  Values that are not
integers (JSON booleans included) are treated as absent: from v10 such power levels events
are rejected by rule 10.1-10.3 (v10/v11: 9.1-9.3), so they can only appear in state a
caller assembled by mistake, and falling back to the default keeps every helper total.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..events.model import Event, StateKey
from ..room_versions import RoomVersion
from .selection import CREATE, POWER_LEVELS

INFINITE = float("inf")

# Client-server API m.room.power_levels, and S2S "Definitions" for the named levels.
NAMED_LEVEL_DEFAULTS: dict[str, int] = {
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
}
# Room versions 1-11: with no m.room.power_levels event the creator has this level.
CREATOR_LEVEL_WITHOUT_POWER_LEVELS = 100


def as_int(value: Any) -> int | None:
    """``value`` if it is a JSON integer (not a boolean), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def get_power_levels_content(state: Mapping[StateKey, Event]) -> dict[str, Any]:
    """Content of the current ``m.room.power_levels`` event, or ``{}`` when there is none."""
    event = state.get((POWER_LEVELS, ""))
    if event is None:
        return {}
    content = event.content
    return dict(content) if isinstance(content, Mapping) else {}


def room_creators(state: Mapping[StateKey, Event], room_version: RoomVersion) -> set[str]:
    """The room creators according to the ``m.room.create`` event in ``state``.

    v10: ``content.creator``; v11: the create event's sender; v12: the sender plus every
    string in ``content.additional_creators``.  Empty when there is no create event.
    """
    create = state.get((CREATE, ""))
    if create is None:
        return set()
    if not room_version.auth.implicit_room_creator:
        creator = create.content.get("creator")
        return {creator} if isinstance(creator, str) else set()
    creators = {create.sender}
    if room_version.auth.privileged_creators:
        extra = create.content.get("additional_creators")
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    return creators


def named_level(name: str, state: Mapping[StateKey, Event]) -> int:
    """One of invite/kick/ban/redact/state_default/events_default/users_default."""
    default = NAMED_LEVEL_DEFAULTS[name]
    value = as_int(get_power_levels_content(state).get(name))
    return default if value is None else value


def user_power_level(
    user_id: str, state: Mapping[StateKey, Event], room_version: RoomVersion
) -> int | float:
    """The power level of ``user_id`` in ``state`` (``float('inf')`` for v12 creators)."""
    if room_version.auth.privileged_creators and user_id in room_creators(state, room_version):
        return INFINITE
    if (POWER_LEVELS, "") not in state:
        if not room_version.auth.privileged_creators and user_id in room_creators(
            state, room_version
        ):
            return CREATOR_LEVEL_WITHOUT_POWER_LEVELS
        return NAMED_LEVEL_DEFAULTS["users_default"]
    content = get_power_levels_content(state)
    users = content.get("users")
    if isinstance(users, Mapping):
        level = as_int(users.get(user_id))
        if level is not None:
            return level
    return named_level("users_default", state)


def event_send_level(event_type: str, is_state: bool, state: Mapping[StateKey, Event]) -> int:
    """The *required power level* to send an event of ``event_type``."""
    events = get_power_levels_content(state).get("events")
    if isinstance(events, Mapping):
        level = as_int(events.get(event_type))
        if level is not None:
            return level
    return named_level("state_default" if is_state else "events_default", state)
