"""User ID and server name grammar as needed by the authorization rules.

Spec: appendices "User Identifiers" (including "Historical User IDs") and "Server Name".

The auth rules validate user IDs in two places: keys of ``m.room.power_levels``
``users`` (all versions) and ``m.room.create`` ``additional_creators`` (v12, "the same user
ID validation applied to ``sender``").  Servers must still accept historical user IDs over
federation, so the localpart check is the lenient one: any non-surrogate code points except
``:`` and NUL, possibly empty.  The whole ID must not exceed 255 bytes and the domain must
be a valid server name.  The grammar itself is ``federation.identifiers`` (shared with the
PDU format check).
"""

from __future__ import annotations

from ..identifiers import MAX_ID_BYTES as MAX_USER_ID_BYTES
from ..identifiers import is_valid_server_name, is_valid_user_id

__all__ = ["MAX_USER_ID_BYTES", "is_valid_server_name", "is_valid_user_id", "user_id_domain"]


def user_id_domain(user_id: object) -> str | None:
    """The server name part of a user ID, or None when there is none."""
    if not isinstance(user_id, str) or ":" not in user_id:
        return None
    return user_id.split(":", 1)[1]
