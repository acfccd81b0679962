"""Access tokens and registration tokens.

Access tokens ("Using access tokens") are random opaque strings handed to the client once; the
database keeps only their SHA-256 hex digest.  Registration tokens ("Token-authenticated
registration") use the Opaque Identifier Grammar (``[A-Za-z0-9._~-]``) and are at most 64
characters long.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone

ACCESS_TOKEN_PREFIX = "pat_"
_REG_TOKEN = re.compile(r"^[A-Za-z0-9._~\-]{1,64}$")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def generate_access_token() -> str:
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_registration_token() -> str:
    return secrets.token_urlsafe(12)


def is_valid_registration_token_string(token: str) -> bool:
    return bool(_REG_TOKEN.match(token))


def parse_expiry(text: str, now_ms: int) -> int:
    """``7d``/``12h``/``30m``/``2w``/``45s`` relative to ``now_ms``, or an ISO 8601 date/time.

    Returns the expiry in ms since the epoch; raises ValueError with a readable message.
    """
    text = text.strip()
    m = _DURATION.match(text)
    if m:
        return now_ms + int(m.group(1)) * _UNIT_MS[m.group(2)]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"invalid expiry {text!r}: use e.g. 7d, 12h, 30m or an ISO date like 2030-01-31T12:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def registration_token_valid(row: dict, now_ms: int) -> bool:
    """Rule: a token is usable while unexpired and completed < uses_allowed.

    Only completed registrations count: a session that passed the token stage but never
    finished holds nothing (``store.use_registration_token``)."""
    if row["expiry_time"] is not None and row["expiry_time"] <= now_ms:
        return False
    if row["uses_allowed"] is not None and row["completed"] >= row["uses_allowed"]:
        return False
    return True
