"""Dashboard login sessions: random cookie tokens, kept only as SHA-256 hashes, in memory.

A session is created after a city office account's password checks out.  The cookie holds a
256-bit random token; the store keys sessions by the token's SHA-256, so a memory dump or a
log line with a hash cannot be replayed as a cookie.  Each session has its own CSRF token
(compared in constant time) and an absolute lifetime; logout deletes it.  Sessions do not
survive a gateway restart (the office logs in again), which also makes them revocable.

Before login, the login form is protected by a double-submit token: a random ``login``
cookie whose value the form must echo.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

SESSION_COOKIE = "parta_dash"
LOGIN_COOKIE = "parta_dash_login"
MAX_SESSIONS = 10_000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two non-empty strings."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass
class Session:
    user_id: str
    csrf: str
    created_ms: int
    expires_ms: int
    flash: list[tuple[str, str, str | None]] = field(default_factory=list)
    # (kind, message, secret-to-show-once or None)


class SessionStore:
    def __init__(self, clock: Any, lifetime_ms: int) -> None:
        self.clock = clock
        self.lifetime_ms = lifetime_ms
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user_id: str) -> tuple[str, Session]:
        now = self.clock.time_ms()
        self._prune(now)
        if len(self._sessions) >= MAX_SESSIONS:  # drop the oldest
            oldest = min(self._sessions, key=lambda k: self._sessions[k].created_ms)
            del self._sessions[oldest]
        token = new_token()
        session = Session(
            user_id=user_id, csrf=new_token(), created_ms=now, expires_ms=now + self.lifetime_ms
        )
        self._sessions[_hash(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 128:
            return None
        key = _hash(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_ms <= self.clock.time_ms():
            del self._sessions[key]
            return None
        return session

    def delete(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_hash(token), None)

    def delete_user(self, user_id: str) -> None:
        for key in [k for k, s in self._sessions.items() if s.user_id == user_id]:
            del self._sessions[key]

    def _prune(self, now: int) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_ms <= now]:
            del self._sessions[key]


def parse_cookies(header: str | None) -> dict[str, str]:
    """``name=value; name2=value2`` (first occurrence wins; no quoting games)."""
    out: dict[str, str] = {}
    if not header:
        return out
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip()
    return out


def cookie_header(
    name: str, value: str, *, max_age: int | None, secure: bool, path: str = "/dashboard"
) -> str:
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
