"""Authorization rule 10 (v10/v11: rule 9): ``m.room.power_levels`` events.

Spec: rooms v10/v11/v12 "Authorisation rules", rule 10.  Numbered as in v12; for v10/v11
the first number is 9 and, since v12 inserted 10.4, v12 10.5..10.11 are v10/v11 9.4..9.10.

* 10.1/10.2 (added in v10): values must be integers -- no strings, no floats, no booleans.
* 10.4 (added in v12): room creators may not be listed in ``users`` (they have infinite
  power and cannot be demoted).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..events.model import Event, StateKey
from .errors import AuthError
from .power_levels import as_int, room_creators, user_power_level
from .selection import POWER_LEVELS
from .user_ids import is_valid_user_id

NAMED_LEVELS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)
LEVEL_MAPS = ("events", "notifications")


def _is_int_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(as_int(v) is not None for v in value.values())


def check_power_levels_event(event: Event, state: Mapping[StateKey, Event]) -> None:
    """Rule 10: return to allow, raise ``AuthError`` to reject."""
    rv = event.room_version
    new = event.content

    # 10.1 If any of the properties users_default, events_default, state_default, ban,
    # redact, kick, or invite in content are present and not an integer, reject.
    for name in NAMED_LEVELS:
        if name in new and as_int(new[name]) is None:
            raise AuthError(rv, "10.1", f"power level {name!r} is not an integer")
    # 10.2 If either of the properties events or notifications in content are present and
    # not an object with values that are integers, reject.
    for name in LEVEL_MAPS:
        if name in new and not _is_int_map(new[name]):
            raise AuthError(rv, "10.2", f"{name!r} must map to integer power levels")
    # 10.3 If the users property in content is not an object with keys that are valid user
    # IDs with values that are integers, reject.  (An absent `users` is an empty map.)
    users = new.get("users", {})
    if not _is_int_map(users) or not all(is_valid_user_id(u) for u in users):
        raise AuthError(rv, "10.3", "'users' must map valid user IDs to integers")
    # v12: 10.4 If the users property in content contains the sender of the
    # m.room.create event or any of the additional_creators, reject.
    if rv.auth.privileged_creators:
        listed = room_creators(state, rv).intersection(users)
        if listed:
            raise AuthError(
                rv, "10.4", f"room creators cannot be given a power level: {sorted(listed)}"
            )

    # 10.5 (v10/v11: 9.4) If there is no previous m.room.power_levels event in the room,
    # allow.
    previous = state.get((POWER_LEVELS, ""))
    if previous is None:
        return
    old = previous.content
    sender_level = user_power_level(event.sender, state, rv)

    # 10.6 (9.5) For the properties users_default, events_default, state_default, ban,
    # redact, kick, invite check if they were added, changed or removed. For each found
    # alteration:
    for name in NAMED_LEVELS:
        old_value, new_value = as_int(old.get(name)), as_int(new.get(name))
        if (name in old) == (name in new) and old_value == new_value:
            continue
        # 10.6.1 If the current value is higher than the sender's current power level,
        # reject.
        if old_value is not None and old_value > sender_level:
            raise AuthError(
                rv,
                "10.6.1",
                f"cannot change {name!r}: current value {old_value} is above the sender's level",
            )
        # 10.6.2 If the new value is higher than the sender's current power level, reject.
        if new_value is not None and new_value > sender_level:
            raise AuthError(
                rv, "10.6.2", f"cannot set {name!r} to {new_value}, above the sender's level"
            )

    for name in LEVEL_MAPS:
        old_value_map = old.get(name)
        old_map: Mapping[str, Any] = old_value_map if isinstance(old_value_map, Mapping) else {}
        new_map = new.get(name, {})
        # 10.7 (9.6) For each entry being changed in, or removed from, the events or
        # notifications properties:
        for key, old_value in old_map.items():
            if key in new_map and new_map[key] == old_value:
                continue
            # 10.7.1 If the current value is greater than the sender's current power
            # level, reject.
            old_level = as_int(old_value)
            if old_level is not None and old_level > sender_level:
                raise AuthError(
                    rv,
                    "10.7.1",
                    f"cannot change {name}[{key!r}]: current value {old_level} "
                    f"is above the sender's level",
                )
        # 10.8 (9.7) For each entry being added to, or changed in, the events or
        # notifications properties:
        for key, new_value in new_map.items():
            if key in old_map and old_map[key] == new_value:
                continue
            # 10.8.1 If the new value is greater than the sender's current power level,
            # reject.
            if new_value > sender_level:
                raise AuthError(
                    rv,
                    "10.8.1",
                    f"cannot set {name}[{key!r}] to {new_value}, above the sender's level",
                )

    old_users_map = old.get("users")
    old_users: Mapping[str, Any] = old_users_map if isinstance(old_users_map, Mapping) else {}
    # 10.9 (9.8) For each entry being changed in, or removed from, the users property,
    # other than the sender's own entry:
    for user_id, old_value in old_users.items():
        if user_id == event.sender or (user_id in users and users[user_id] == old_value):
            continue
        # 10.9.1 If the current value is greater than or equal to the sender's current
        # power level, reject.
        old_level = as_int(old_value)
        if old_level is not None and old_level >= sender_level:
            raise AuthError(
                rv,
                "10.9.1",
                f"cannot change the level of {user_id}: {old_level} is not "
                f"below the sender's level",
            )
    # 10.10 (9.9) For each entry being added to, or changed in, the users property:
    for user_id, new_value in users.items():
        if user_id in old_users and old_users[user_id] == new_value:
            continue
        # 10.10.1 If the new value is greater than the sender's current power level,
        # reject.
        if new_value > sender_level:
            raise AuthError(
                rv, "10.10.1", f"cannot give {user_id} level {new_value}, above the sender's level"
            )
    # 10.11 (9.10) Otherwise, allow.
