"""User-Interactive Authentication API (client-server "User-Interactive Authentication API").

A request to a UIA endpoint carries an optional ``auth`` dict.  The server answers 401 with
``{flows, params, session[, completed][, errcode, error]}`` until the client has completed every
stage of one flow; then the endpoint runs.  Rules, numbered after the spec section:

1. A request without ``auth`` (or with an ``auth`` naming neither a ``type`` nor a ``session``)
   never succeeds: it gets the 401 with a new ``session``.
2. A stage attempt must use a type that appears in an offered flow.
3. A successful stage is added to ``completed``; if a whole flow is complete the call proceeds,
   otherwise the 401 is repeated with ``completed``.
4. A failed attempt repeats the 401 with ``errcode``/``error`` added; the client may retry.
5. A session belongs to one operation (and user), so it cannot be replayed elsewhere; it is
   discarded once the operation succeeds, and expires after ``timeout_ms``.

Memory stays bounded whatever unauthenticated clients do (the spec leaves session lifetime
to the server): an unfinished session expires ``SESSION_TIMEOUT_MS`` (10 minutes) after it
was created -- a person typing a password or a registration token needs seconds to a few
minutes, and every live session costs memory; a client (its user when authenticated, else
its address) may create sessions at the ``creation_limiter``'s rate (429
``M_LIMIT_EXCEEDED``) and hold at most ``MAX_SESSIONS_PER_CLIENT`` (100: a class registering
behind one school NAT address fits); there are at most ``MAX_SESSIONS`` (10,000) in all.  Over
a cap the oldest session (of that client, else of all) is evicted: a flood then only replaces
other flood sessions and never refuses a new client outright.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Awaitable, Callable

from federation.errors import MatrixError

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"
EMAIL_IDENTITY = "m.login.email.identity"

SESSION_TIMEOUT_MS = 10 * 60 * 1000
MAX_SESSIONS = 10_000
MAX_SESSIONS_PER_CLIENT = 100


@dataclass
class UiaSession:
    session_id: str
    op: str  # "register", "password", "delete_devices"
    user_id: str | None  # the user who must authenticate (None for register)
    created_ms: int
    client: str = ""  # who created it: the user, else "ip:<address>"
    completed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # stage results (e.g. the token)
    client_ip: str | None = None  # the address of the current round (stage rate limits)


class AuthRequired(MatrixError):
    """The 401 UIA response; ``to_json`` renders the exact body the spec describes."""

    errcode = "M_FORBIDDEN"
    http_status = 401

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", "Additional authentication required"))
        self.body = body

    def to_json(self) -> dict:
        return self.body


class StageFailed(Exception):
    def __init__(self, message: str, errcode: str = "M_FORBIDDEN") -> None:
        super().__init__(message)
        self.message = message
        self.errcode = errcode


StageHandler = Callable[[UiaSession, dict], Awaitable[None]]


class UserInteractiveAuth:
    def __init__(
        self,
        now_ms: Callable[[], int],
        *,
        timeout_ms: int = SESSION_TIMEOUT_MS,
        on_discard: Callable[[UiaSession], Any] | None = None,
        creation_limiter: Any = None,
        max_sessions: int = MAX_SESSIONS,
        max_per_client: int = MAX_SESSIONS_PER_CLIENT,
    ) -> None:
        self._now_ms = now_ms
        self._timeout_ms = timeout_ms
        self._on_discard = on_discard
        self._creation_limiter = creation_limiter  # RateLimiter keyed by client, or None
        self._max_sessions = max_sessions
        self._max_per_client = max_per_client
        # Creation order = expiry order (one fixed timeout), so expiry pops from the front.
        self._sessions: OrderedDict[str, UiaSession] = OrderedDict()
        self._by_client: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        """Drop expired sessions: O(number expired), oldest first."""
        cutoff = self._now_ms() - self._timeout_ms
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.created_ms >= cutoff:
                break
            self.discard(oldest)

    def discard(self, session: UiaSession) -> None:
        if self._forget(session) and self._on_discard:
            self._on_discard(session)

    def _forget(self, session: UiaSession) -> bool:
        if self._sessions.pop(session.session_id, None) is None:
            return False
        mine = self._by_client.get(session.client)
        if mine is not None:
            mine.pop(session.session_id, None)
            if not mine:
                del self._by_client[session.client]
        return True

    def _create(self, op: str, user_id: str | None, client_ip: str | None) -> UiaSession:
        client = user_id or "ip:" + (client_ip or "?")
        if self._creation_limiter is not None:
            self._creation_limiter.check(client)  # 429 M_LIMIT_EXCEEDED
        mine = self._by_client.get(client)
        if mine is not None and len(mine) >= self._max_per_client:
            for sid in list(islice(mine, len(mine) - self._max_per_client + 1)):
                self.discard(self._sessions[sid])
        while len(self._sessions) >= self._max_sessions:
            self.discard(next(iter(self._sessions.values())))
        session = UiaSession(secrets.token_urlsafe(18), op, user_id, self._now_ms(), client)
        self._sessions[session.session_id] = session
        self._by_client.setdefault(client, OrderedDict())[session.session_id] = None
        return session

    def _body(
        self,
        session: UiaSession,
        flows: list[list[str]],
        params: dict,
        error: StageFailed | None = None,
    ) -> dict:
        body: dict[str, Any] = {
            "flows": [{"stages": list(f)} for f in flows],
            "params": params,
            "session": session.session_id,
        }
        if session.completed:
            body["completed"] = list(session.completed)
        if error is not None:
            body["errcode"] = error.errcode
            body["error"] = error.message
        return body

    async def authenticate(
        self,
        op: str,
        auth: Any,
        flows: list[list[str]],
        handlers: dict[str, StageHandler],
        *,
        user_id: str | None = None,
        params: dict | None = None,
        client_ip: str | None = None,
    ) -> UiaSession:
        """Run one UIA round; return the session once a flow is complete, else raise 401."""
        self._expire()
        params = params or {}
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError("'auth' must be an object", errcode="M_BAD_JSON")
        auth = auth or {}
        sid = auth.get("session")
        stage = auth.get("type")
        if sid is not None:
            session = self._sessions.get(sid) if isinstance(sid, str) else None
            if session is None:
                raise MatrixError("Unknown or expired UIA session", errcode="M_UNKNOWN")
            if session.op != op or session.user_id != user_id:  # rule 5
                raise MatrixError(
                    "UIA session belongs to another request", errcode="M_FORBIDDEN", http_status=403
                )
        else:
            session = self._create(op, user_id, client_ip)
            if stage is None:  # rule 1
                raise AuthRequired(self._body(session, flows, params))
        session.client_ip = client_ip
        if stage is not None:
            offered = {s for f in flows for s in f}
            if stage not in offered or stage not in handlers:  # rule 2
                raise AuthRequired(
                    self._body(
                        session,
                        flows,
                        params,
                        StageFailed(f"Authentication type {stage!r} is not offered here"),
                    )
                )
            if stage not in session.completed:
                try:
                    await handlers[stage](session, auth)
                except StageFailed as exc:  # rule 4
                    raise AuthRequired(self._body(session, flows, params, exc)) from None
                session.completed.append(stage)
        done = set(session.completed)
        if any(set(f) <= done for f in flows):  # rule 3
            return session
        raise AuthRequired(self._body(session, flows, params))

    def finish(self, session: UiaSession) -> None:
        """The operation succeeded: forget the session (rule 5) without on_discard."""
        self._forget(session)

    def refuse(
        self,
        session: UiaSession,
        flows: list[list[str]],
        stage: str,
        message: str,
        errcode: str = "M_FORBIDDEN",
        params: dict | None = None,
    ) -> AuthRequired:
        """A completed ``stage`` turned out invalid when the operation ran (e.g. a
        registration token used up meanwhile): un-complete it and build the 401 (rule 4)
        so the client can retry that stage in the same session."""
        if stage in session.completed:
            session.completed.remove(stage)
        return AuthRequired(self._body(session, flows, params or {}, StageFailed(message, errcode)))
