"""Account locking and suspension (client-server "Account moderation").

Both are reversible flags a server admin sets with ``PUT /admin/lock|suspend/{userId}``
(``api/admin_accounts.py``), kept in ``account_restrictions`` and mirrored in memory: the
check runs on every authenticated request, so it is one dict look-up, and only for a
restricted user (few at a time) a look at the route.

* A locked user gets 401 ``M_USER_LOCKED`` with ``soft_logout: true`` on every endpoint but
  ``POST /logout`` and ``POST /logout/all``; the tokens stay valid so the client keeps its
  session and sees the lock lift ("Account locking").
* A suspended user may still read, sync, leave, redact, log out and manage devices, keys and
  contacts, but not the recommended forbidden actions ("Account suspension"): join or knock,
  invite, send messages and state, create rooms, change the profile, kick/ban, publish
  aliases, or remove a contact address -- 403 ``M_USER_SUSPENDED``.  Sending an
  ``m.room.redaction`` through ``/send`` stays allowed (redacting one's own events).

Server admins are the school roles that run the school (``SERVER_ADMIN_ROLES``): the spec
leaves "server admin" to the server.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from federation.errors import MatrixError

from . import threepid_store

SERVER_ADMIN_ROLES = frozenset({"director", "office"})

_VERSION_PREFIX = re.compile(r"^/_matrix/client/(?:v3|v1|r0|unstable)")

# (method, route template after the version prefix)
_LOCK_EXEMPT = frozenset({("POST", "/logout"), ("POST", "/logout/all")})
_SEND = "/rooms/{roomId}/send/{eventType}/{txnId}"
_SUSPENDED_FORBIDDEN = frozenset(
    {
        ("POST", "/join/{roomIdOrAlias}"),
        ("POST", "/rooms/{roomId}/join"),
        ("POST", "/knock/{roomIdOrAlias}"),
        ("POST", "/rooms/{roomId}/invite"),
        ("POST", "/createRoom"),
        ("POST", "/rooms/{roomId}/kick"),
        ("POST", "/rooms/{roomId}/ban"),
        ("POST", "/rooms/{roomId}/unban"),
        ("POST", "/rooms/{roomId}/upgrade"),
        ("PUT", "/rooms/{roomId}/state/{eventType}"),
        ("PUT", "/rooms/{roomId}/state/{eventType}/"),
        ("PUT", "/rooms/{roomId}/state/{eventType}/{stateKey}"),
        ("PUT", "/profile/{userId}/{keyName}"),
        ("DELETE", "/profile/{userId}/{keyName}"),
        ("PUT", "/profile/{userId}/displayname"),
        ("PUT", "/profile/{userId}/avatar_url"),
        ("PUT", "/directory/room/{roomAlias}"),
        ("PUT", "/directory/list/room/{roomId}"),
        ("POST", "/account/3pid/delete"),
        ("POST", "/account/3pid/unbind"),
    }
)


class UserLocked(MatrixError):
    errcode = "M_USER_LOCKED"
    http_status = 401

    def __init__(self) -> None:
        super().__init__("This account has been locked", soft_logout=True)


class UserSuspended(MatrixError):
    errcode = "M_USER_SUSPENDED"
    http_status = 403

    def __init__(self) -> None:
        super().__init__("You cannot perform this action while suspended.")


def is_server_admin_role(role: str | None) -> bool:
    return role in SERVER_ADMIN_ROLES


def _route_key(method: str, route_name: str) -> tuple[str, str]:
    return method, _VERSION_PREFIX.sub("", route_name, count=1)


def suspended_may(method: str, route_name: str, path: str) -> bool:
    """Whether a suspended user may make this request (pure; see the module docstring)."""
    key = _route_key(method, route_name)
    if key in _SUSPENDED_FORBIDDEN:
        return False
    if key == ("PUT", _SEND):
        parts = path.split("/")
        try:
            event_type = parts[parts.index("send") + 1]
        except (ValueError, IndexError):
            return False
        return event_type == "m.room.redaction"
    return True


class AccountModeration:
    """The locked/suspended flags of local accounts, in memory and in the database."""

    def __init__(self, db: Any, now_ms: Callable[[], int]) -> None:
        self._db = db
        self._now_ms = now_ms
        self._flags: dict[str, tuple[bool, bool]] = {}  # user -> (locked, suspended)

    def load(self) -> None:
        """Start-up only: read the restricted accounts (few rows)."""
        self._flags = self._db.run_sync(threepid_store.all_restrictions)

    def is_locked(self, user_id: str) -> bool:
        return self._flags.get(user_id, (False, False))[0]

    def is_suspended(self, user_id: str) -> bool:
        return self._flags.get(user_id, (False, False))[1]

    def check(self, user_id: str, request: Any) -> None:
        """Hot path, on every authenticated request: raise for a restricted user."""
        flags = self._flags.get(user_id)
        if flags is None:
            return
        locked, suspended = flags
        method = getattr(request, "method", "GET")
        route_name = getattr(request, "route_name", "")
        if locked and _route_key(method, route_name) not in _LOCK_EXEMPT:
            raise UserLocked()
        if suspended and not suspended_may(method, route_name, getattr(request, "path", "")):
            raise UserSuspended()

    async def set_flag(
        self, user_id: str, *, by: str, locked: bool | None = None, suspended: bool | None = None
    ) -> None:
        old_locked, old_suspended = self._flags.get(user_id, (False, False))
        new = (
            old_locked if locked is None else locked,
            old_suspended if suspended is None else suspended,
        )
        now = self._now_ms()
        await self._db.run(
            lambda conn: threepid_store.set_restriction(
                conn, user_id, locked=new[0], suspended=new[1], by=by, now_ms=now
            )
        )
        if any(new):
            self._flags[user_id] = new
        else:
            self._flags.pop(user_id, None)
