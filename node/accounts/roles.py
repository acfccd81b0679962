"""School roles a Parta account carries (Parta-specific; not part of the Matrix spec)."""

from __future__ import annotations

ROLES: tuple[str, ...] = ("director", "deputy", "teacher", "pupil", "parent", "office")

# Accounts created through open registration or a registration token without a role.
DEFAULT_ROLE = "pupil"


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    return role
