"""User and device identifiers (spec appendices "User Identifiers", "Opaque Identifiers").

Rule numbers follow the appendix: (1) a user ID is ``@localpart:domain``; (2) new localparts use
only ``a-z 0-9 . _ = - / +``; (3) the whole user ID is at most 255 bytes.
"""

from __future__ import annotations

import re
import secrets
import string

from federation.errors import MatrixError

_LOCALPART = re.compile(r"^[a-z0-9._=\-/+]+$")
_DEVICE_CHARS = string.ascii_uppercase
MAX_USER_ID_BYTES = 255


class InvalidUsername(MatrixError):
    errcode = "M_INVALID_USERNAME"


def make_user_id(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def check_localpart(localpart: str, server_name: str) -> str:
    """Validate a localpart for a *new* account (rules 2-3); raises M_INVALID_USERNAME."""
    if not localpart:
        raise InvalidUsername("User ID cannot be empty")
    if not _LOCALPART.match(localpart):
        raise InvalidUsername(
            "User ID may only contain the characters a-z, 0-9, '.', '_', '=', '-', '/' and '+'"
        )
    if len(make_user_id(localpart, server_name).encode("utf-8")) > MAX_USER_ID_BYTES:
        raise InvalidUsername(f"User ID may not be longer than {MAX_USER_ID_BYTES} bytes")
    return localpart


def localpart_from_input(user: str, server_name: str) -> str | None:
    """Map a login identifier (``alice`` or ``@alice:server``) to a localpart.

    Returns None if it names a user on another server.  Login is case-insensitive because
    every localpart we create is lower-case (rule 2).
    """
    if user.startswith("@"):
        local, sep, domain = user[1:].partition(":")
        if not sep or domain != server_name:
            return None
        user = local
    return user.lower()


def split_user_id(user_id: str) -> tuple[str, str] | None:
    if not user_id.startswith("@") or ":" not in user_id:
        return None
    local, _, domain = user_id[1:].partition(":")
    if not local or not domain:
        return None
    return local, domain


def generate_device_id() -> str:
    return "".join(secrets.choice(_DEVICE_CHARS) for _ in range(10))


def generate_localpart() -> str:
    """For registrations that give no username (spec: the server MUST generate one)."""
    return "u" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11))
