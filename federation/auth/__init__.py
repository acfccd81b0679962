"""Authorization rules for room versions 10-12 (pure functions, no I/O).

Spec: ``content/rooms/v10.md``..``v12.md`` "Authorisation rules"; server-server API
"Auth events selection" and "Checks performed on receipt of a PDU".

* ``selection``: which state an event's ``auth_events`` point at.
* ``power_levels``: power levels read from state, with the spec's defaults.
* ``rules``: ``check_state_independent_auth_rules``, ``check_state_dependent_auth_rules``,
  ``check_auth`` and ``AuthError``.
"""

from .errors import AuthError, rule_label
from .power_levels import (
    event_send_level,
    get_power_levels_content,
    named_level,
    room_creators,
    user_power_level,
)
from .rules import check_auth, check_state_dependent_auth_rules, check_state_independent_auth_rules
from .selection import auth_types_for_event

__all__ = [
    "AuthError",
    "rule_label",
    "auth_types_for_event",
    "check_auth",
    "check_state_dependent_auth_rules",
    "check_state_independent_auth_rules",
    "event_send_level",
    "get_power_levels_content",
    "named_level",
    "room_creators",
    "user_power_level",
]
