"""Profile field rules (client-server "Profiles", ``PUT /profile/{userId}/{keyName}``).

1. ``keyName`` is ``displayname``, ``avatar_url``, ``m.tz`` or a namespaced custom key
   (Common Namespaced Identifier Grammar); otherwise 400 ``M_INVALID_PARAM``.
2. A key longer than 255 bytes is 400 ``M_KEY_TOO_LARGE``.
3. ``displayname`` must be a string; ``avatar_url`` must be an MXC URI; ``m.tz`` a string;
   none of them may hold a NUL character (PostgreSQL cannot store one) and ``avatar_url`` is
   at most 512 characters (its column), 400 ``M_INVALID_PARAM``.
4. The whole profile, as JSON, stays under 64 KiB (400 ``M_PROFILE_TOO_LARGE``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from federation.errors import InvalidParam, MatrixError

_KEY = re.compile(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")
MAX_KEY_BYTES = 255
MAX_PROFILE_BYTES = 64 * 1024
MAX_DISPLAYNAME_CHARS = 256
MAX_AVATAR_URL_CHARS = 512


def check_key(key: str) -> None:
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:  # rule 2
        raise MatrixError("Profile key too long", errcode="M_KEY_TOO_LARGE")
    if not _KEY.match(key):  # rule 1
        raise InvalidParam("Invalid profile key.")


def check_value(key: str, value: Any) -> None:  # rule 3
    if isinstance(value, str) and "\x00" in value:
        raise InvalidParam(f"{key} must not contain NUL characters")
    if key == "displayname":
        if not isinstance(value, str):
            raise InvalidParam("displayname must be a string")
        if len(value) > MAX_DISPLAYNAME_CHARS:
            raise InvalidParam(f"displayname may be at most {MAX_DISPLAYNAME_CHARS} characters")
    elif key == "avatar_url":
        if not isinstance(value, str) or not (value.startswith("mxc://") or value == ""):
            raise InvalidParam("avatar_url must be an mxc:// URI")
        if len(value) > MAX_AVATAR_URL_CHARS:
            raise InvalidParam(f"avatar_url may be at most {MAX_AVATAR_URL_CHARS} characters")
    elif key == "m.tz":
        if not isinstance(value, str):
            raise InvalidParam("m.tz must be a string")


def check_profile_size(profile: dict) -> None:  # rule 4
    if len(orjson.dumps(profile)) > MAX_PROFILE_BYTES:
        raise MatrixError("Profile would exceed 64 KiB", errcode="M_PROFILE_TOO_LARGE")
