"""Authorization failures and the spec's rule numbering.

Spec: ``content/rooms/v10.md``, ``v11.md``, ``v12.md`` "Authorisation rules".

The code in this package numbers every rule as room version 12 does.  Version 12 inserted
two rules, which shifts the numbers of the older versions:

* rule 2 ("room_id is an accepted create event's id") is new, so rules 3..11 of v12 are
  rules 2..10 of v10/v11 (v10/v11 rule 2.4, "no create event among the auth events", has
  no v12 counterpart: its number 3.4 is skipped in v12);
* rule 10.4 ("creators may not appear in ``users``") is new, so v12 10.5..10.11 are
  v10/v11 9.4..9.10.

Sub-rules of rule 1 differ per version and are passed through unchanged (the create
checks are written per version).  ``AuthError.rule`` always carries the number as printed
in the spec of the event's own room version, so messages read e.g.
``auth rule 4.3.2 (v10): sender does not match state_key``.
"""

from __future__ import annotations

from ..errors import Forbidden
from ..room_versions import RoomVersion


def rule_label(room_version: RoomVersion, rule: str) -> str:
    """Translate a v12-style rule number into the number used by ``room_version``'s spec."""
    parts = [int(p) for p in rule.split(".")]
    top = parts[0]
    if not room_version.event_format.room_id_is_create_event_hash:
        # Before v12 there is no rule 2 (room ID = create event ID); 3.. shift down by one.
        if top == 2:
            raise ValueError(f"rule {rule} does not exist before room version 12")
        if top >= 3:
            parts[0] = top - 1
    elif rule.startswith("3.4"):
        raise ValueError("rule 3.4 does not exist in room version 12")
    if not room_version.auth.privileged_creators and top == 10 and len(parts) > 1:
        # Before v12 there is no 10.4 (creators in `users`); 10.5.. shift down by one.
        if parts[1] == 4:
            raise ValueError(f"rule {rule} does not exist before room version 12")
        if parts[1] > 4:
            parts[1] -= 1
    return ".".join(str(p) for p in parts)


class AuthError(Forbidden):
    """An event fails the authorization rules (it is rejected, or soft-failed).

    ``rule`` is the failing rule's number in the event's room version (see module doc),
    ``reason`` the human explanation; the message combines both.
    """

    def __init__(self, room_version: RoomVersion, rule: str, reason: str) -> None:
        self.rule = rule_label(room_version, rule)
        self.room_version_id = room_version.identifier
        self.reason = reason
        super().__init__(f"auth rule {self.rule} (v{room_version.identifier}): {reason}")
