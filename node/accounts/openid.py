"""OpenID tokens (client-server API "OpenID", server-server API "OpenID").

https://spec.matrix.org/v1.16/client-server-api/#openid
https://spec.matrix.org/v1.16/server-server-api/#openid

A user asks for a token (``POST /user/{userId}/openid/request_token``) and hands it to a
third party (e.g. an integration manager or a widget), which asks our federation listener
who the token belongs to (``GET /_matrix/federation/v1/openid/userinfo``).  The token proves
nothing else: it is not an access token and never authenticates a client request.

Only the SHA-256 of a token is stored, with its expiry (``TOKEN_LIFETIME_MS``, one hour;
a deactivated account's tokens stop answering at once);
expired rows are deleted when new tokens are issued, so the table holds at most an hour of
tokens.  A user may hold at most ``MAX_TOKENS_PER_USER`` live tokens (issuing more is 429
``M_LIMIT_EXCEEDED``), which bounds the table whatever a client does.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable

from sqlalchemy import delete, func, insert, select

from federation.errors import MatrixError
from schema.accounts import users
from schema.client_misc import openid_tokens

from .tokens import hash_token

TOKEN_LIFETIME_MS = 3600 * 1000
MAX_TOKENS_PER_USER = 100
MAX_TOKEN_CHARS = 256  # longer query values cannot be ours: no hashing of megabytes


class UnknownOpenIdToken(MatrixError):
    errcode = "M_UNKNOWN_TOKEN"
    http_status = 401


def _issue(conn: Any, user_id: str, token_hash: str, now_ms: int) -> bool:
    conn.execute(delete(openid_tokens).where(openid_tokens.c.expires_ts <= now_ms))
    live = conn.execute(
        select(func.count()).select_from(openid_tokens).where(openid_tokens.c.user_id == user_id)
    ).scalar()
    if int(live or 0) >= MAX_TOKENS_PER_USER:
        return False
    conn.execute(
        insert(openid_tokens).values(
            token_hash=token_hash, user_id=user_id, expires_ts=now_ms + TOKEN_LIFETIME_MS
        )
    )
    return True


def _owner(conn: Any, token_hash: str, now_ms: int) -> str | None:
    # A deactivated account's tokens stop answering at once, like its access tokens.
    return conn.execute(
        select(openid_tokens.c.user_id)
        .join(users, users.c.user_id == openid_tokens.c.user_id)
        .where(
            openid_tokens.c.token_hash == token_hash,
            openid_tokens.c.expires_ts > now_ms,
            users.c.deactivated.is_(False),
        )
    ).scalar()


class OpenIdTokens:
    """The token store; stateless apart from the database, so the client API and the
    federation listener each hold one."""

    def __init__(self, db: Any, time_ms: Callable[[], int]) -> None:
        self.db = db
        self.time_ms = time_ms

    async def issue(self, user_id: str) -> dict:
        """A new token for ``user_id``: the spec's ``OpenIdCredentials`` object (without
        ``matrix_server_name``, which the caller adds)."""
        token = secrets.token_urlsafe(32)
        ok = await self.db.run(_issue, user_id, hash_token(token), self.time_ms())
        if not ok:
            raise MatrixError(
                "Too many OpenID tokens; wait for some to expire",
                errcode="M_LIMIT_EXCEEDED",
                http_status=429,
            )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_MS // 1000,
        }

    async def owner(self, token: str | None) -> str:
        """The user a live token belongs to; 401 ``M_UNKNOWN_TOKEN`` otherwise."""
        if not token or len(token) > MAX_TOKEN_CHARS or "\x00" in token:
            raise UnknownOpenIdToken("Access token unknown or expired")
        user_id = await self.db.run(_owner, hash_token(token), self.time_ms())
        if user_id is None:
            raise UnknownOpenIdToken("Access token unknown or expired")
        return str(user_id)
