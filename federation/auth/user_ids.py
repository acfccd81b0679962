"""User ID and server name grammar as needed by the authorization rules.

Spec: appendices "User Identifiers" (including "Historical User IDs") and "Server Name".

The auth rules validate user IDs in two places: keys of ``m.room.power_levels``
``users`` (all versions) and ``m.room.create`` ``additional_creators`` (v12, "the same user
ID validation applied to ``sender``").  Servers must still accept historical user IDs over
federation, so the localpart check is the lenient one: any non-surrogate code points except
``:`` and NUL, possibly empty.  The whole ID must not exceed 255 bytes and the domain must
be a valid server name.
"""

from __future__ import annotations

import re

_PORT = r"(?::[0-9]{1,5})?"
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}" + _PORT)
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]" + _PORT)
_DNS = re.compile(r"[0-9A-Za-z.\-]{1,255}" + _PORT)

MAX_USER_ID_BYTES = 255


def is_valid_server_name(name: object) -> bool:
    """True if ``name`` matches the spec's server name grammar (host plus optional port)."""
    if not isinstance(name, str) or not name:
        return False
    if name.startswith("["):
        return _IPV6.fullmatch(name) is not None
    if _IPV4.fullmatch(name):
        host = name.split(":", 1)[0]
        return all(int(octet) <= 255 for octet in host.split("."))
    return _DNS.fullmatch(name) is not None


def is_valid_user_id(user_id: object) -> bool:
    """True for a (possibly historical) user ID ``@localpart:server_name``."""
    if not isinstance(user_id, str) or not user_id.startswith("@") or ":" not in user_id:
        return False
    try:
        size = len(user_id.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates are never legal
        return False
    if size > MAX_USER_ID_BYTES:
        return False
    localpart, domain = user_id[1:].split(":", 1)
    if "\x00" in localpart:
        return False
    return is_valid_server_name(domain)


def user_id_domain(user_id: str) -> str | None:
    """The server name part of a user ID, or None when there is none."""
    if not isinstance(user_id, str) or ":" not in user_id:
        return None
    return user_id.split(":", 1)[1]
