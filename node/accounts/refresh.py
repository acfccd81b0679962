"""Refresh tokens (client-server API "Refreshing access tokens", ``refresh.yaml``).

A client that sends ``"refresh_token": true`` to ``/login`` or ``/register`` gets a
``refresh_token`` and an access token that expires after ``auth.access_token_lifetime_ms``
(``expires_in_ms``); clients that do not ask keep non-expiring access tokens, which the
spec leaves to the server.  An expired access token is 401 ``M_UNKNOWN_TOKEN`` with
``soft_logout: true``, so the client refreshes instead of throwing its session (and its
encryption keys) away.

``POST /refresh`` rotates both tokens: a new access token and a new refresh token bound
to the same device; the old access token stops working at once (the spec lets the server
choose).  The old refresh token stays valid until the new access token or the new
refresh token is used -- a client that lost the answer can repeat the refresh, which then
drops the unused replacement -- and is deleted at that first use.  Only SHA-256 digests
are stored.  A refresh token dies with its device: logging out, deleting the device,
deactivation, or a device re-created later under the same ID (the row must be newer than
the device).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from federation.errors import BadJSON
from schema.accounts import access_tokens, devices, users
from schema.refresh_tokens import refresh_tokens

from .tokens import generate_access_token, hash_token

REFRESH_TOKEN_PREFIX = "prt_"
MAX_TRACKED = 100_000  # expiring access tokens remembered in memory


def generate_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def wants_refresh_token(body: dict) -> bool:
    value = body.get("refresh_token", False)
    if not isinstance(value, bool):
        raise BadJSON("'refresh_token' must be a boolean")
    return value


# --- database ------------------------------------------------------------------------------
def insert_refresh_row(
    conn: Connection,
    *,
    token_hash: str,
    user_id: str,
    device_id: str,
    access_hash: str,
    expires_ts: int,
    now_ms: int,
) -> int:
    res = conn.execute(
        insert(refresh_tokens).values(
            token_hash=token_hash,
            user_id=user_id,
            device_id=device_id,
            access_token_hash=access_hash,
            access_expires_ts=expires_ts,
            created_ts=now_ms,
        )
    )
    return int(res.inserted_primary_key[0])  # type: ignore[index]  # set by a one-row INSERT


def first_use(conn: Connection, access_hash: str) -> int | None:
    """The expiry of a refreshable access token (None for others); its first use revokes
    the refresh token it replaced."""
    row = conn.execute(
        select(refresh_tokens.c.id, refresh_tokens.c.access_expires_ts).where(
            refresh_tokens.c.access_token_hash == access_hash
        )
    ).first()
    if row is None:
        return None
    conn.execute(delete(refresh_tokens).where(refresh_tokens.c.next_id == row.id))
    return int(row.access_expires_ts)


def _device_alive(conn: Connection, row: Any) -> bool:
    found = conn.execute(
        select(devices.c.created_ts)
        .select_from(devices.join(users, users.c.user_id == devices.c.user_id))
        .where(
            devices.c.user_id == row.user_id,
            devices.c.device_id == row.device_id,
            users.c.deactivated.is_(False),
        )
    ).first()
    return found is not None and found.created_ts <= row.created_ts


def rotate(
    conn: Connection,
    token_hash: str,
    *,
    access_hash: str,
    refresh_hash: str,
    expires_ts: int,
    now_ms: int,
) -> tuple[str, str, list[str]] | None:
    """``POST /refresh`` in one transaction: (user_id, device_id, access token hashes that
    stopped working), or None for an unknown, used or orphaned refresh token."""
    row = conn.execute(
        select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    if not _device_alive(conn, row):
        conn.execute(delete(refresh_tokens).where(refresh_tokens.c.id == row.id))
        return None
    dropped = [row.access_token_hash]
    if row.next_id is not None:  # a repeated refresh: the unused replacement goes
        nxt = conn.execute(
            select(refresh_tokens.c.access_token_hash).where(refresh_tokens.c.id == row.next_id)
        ).first()
        if nxt is not None:
            dropped.append(nxt.access_token_hash)
        conn.execute(delete(refresh_tokens).where(refresh_tokens.c.id == row.next_id))
    # Using this token revokes the one it replaced.
    conn.execute(delete(refresh_tokens).where(refresh_tokens.c.next_id == row.id))
    conn.execute(delete(access_tokens).where(access_tokens.c.token_hash.in_(dropped)))
    conn.execute(
        insert(access_tokens).values(
            token_hash=access_hash,
            user_id=row.user_id,
            device_id=row.device_id,
            created_ts=now_ms,
        )
    )
    new_id = insert_refresh_row(
        conn,
        token_hash=refresh_hash,
        user_id=row.user_id,
        device_id=row.device_id,
        access_hash=access_hash,
        expires_ts=expires_ts,
        now_ms=now_ms,
    )
    conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == row.id).values(next_id=new_id))
    return row.user_id, row.device_id, dropped


def revoke_device_rows(conn: Connection, user_id: str, device_id: str) -> list[str]:
    """Delete a device's refresh tokens and the access tokens issued with them; returns
    those access token hashes."""
    where = (refresh_tokens.c.user_id == user_id, refresh_tokens.c.device_id == device_id)
    hashes = [r[0] for r in conn.execute(select(refresh_tokens.c.access_token_hash).where(*where))]
    if hashes:
        conn.execute(delete(refresh_tokens).where(*where))
        conn.execute(delete(access_tokens).where(access_tokens.c.token_hash.in_(hashes)))
    return hashes


# --- the service part -----------------------------------------------------------------------
class RefreshTokens:
    """Issues and rotates refresh tokens and knows which access tokens expire."""

    def __init__(self, accounts: Any, lifetime_ms: int) -> None:
        self.accounts = accounts
        self.db = accounts.db
        self.clock = accounts.clock
        self.lifetime_ms = max(1000, int(lifetime_ms))
        self._expiry: dict[str, int] = {}  # access token hash -> expiry (ms)

    def _remember(self, access_hash: str, expires_ts: int) -> None:
        if len(self._expiry) >= MAX_TRACKED:
            now = self.clock.time_ms()
            self._expiry = {h: t for h, t in self._expiry.items() if t > now}
        self._expiry[access_hash] = expires_ts

    def expired(self, access_hash: str) -> bool:
        """The authentication hot path: one dict lookup."""
        expires = self._expiry.get(access_hash)
        return expires is not None and self.clock.time_ms() >= expires

    async def on_first_use(self, access_hash: str) -> None:
        """An access token not in the accounts cache was just found in the database."""
        expires = await self.db.run(first_use, access_hash)
        if expires is not None:
            self._remember(access_hash, expires)

    async def issue(self, user_id: str, device_id: str, access_token: str) -> dict[str, Any]:
        """A refresh token for a freshly issued access token (``/login``, ``/register``)."""
        token = generate_refresh_token()
        now = self.clock.time_ms()
        expires = now + self.lifetime_ms
        access_hash = hash_token(access_token)
        await self.db.run(
            lambda conn: insert_refresh_row(
                conn,
                token_hash=hash_token(token),
                user_id=user_id,
                device_id=device_id,
                access_hash=access_hash,
                expires_ts=expires,
                now_ms=now,
            )
        )
        self._remember(access_hash, expires)
        return {"refresh_token": token, "expires_in_ms": self.lifetime_ms}

    async def revoke_device(self, user_id: str, device_id: str) -> None:
        """A login that names its device: the spec invalidates the tokens the device had."""
        dropped = await self.db.run(revoke_device_rows, user_id, device_id)
        if dropped:
            self.accounts._forget_tokens(user_id, dropped)  # cached requesters of those tokens
            for h in dropped:
                self._expiry.pop(h, None)

    async def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """``POST /refresh``: the new tokens, or None when the refresh token is no good."""
        access_token, new_refresh = generate_access_token(), generate_refresh_token()
        now = self.clock.time_ms()
        expires = now + self.lifetime_ms
        access_hash = hash_token(access_token)
        result = await self.db.run(
            lambda conn: rotate(
                conn,
                hash_token(refresh_token),
                access_hash=access_hash,
                refresh_hash=hash_token(new_refresh),
                expires_ts=expires,
                now_ms=now,
            )
        )
        if result is None:
            return None
        user_id, _device_id, dropped = result
        self.accounts._forget_tokens(user_id, dropped)  # cached requesters of those tokens
        for h in dropped:
            self._expiry.pop(h, None)
        self._remember(access_hash, expires)
        return {
            "access_token": access_token,
            "refresh_token": new_refresh,
            "expires_in_ms": self.lifetime_ms,
        }


async def add_refresh_token(accounts: Any, body: dict, result: dict) -> None:
    """``/login`` and ``/register``: add ``refresh_token`` and ``expires_in_ms`` to
    ``result`` (which has the new access token) when the client asked for them."""
    wanted = wants_refresh_token(body)
    tokens = accounts.refresh_tokens
    if tokens is None or "access_token" not in result:
        return
    if body.get("device_id") is not None:
        # "the server will invalidate any access and refresh tokens previously assigned
        # to that device" (login.yaml): its refresh tokens and their access tokens
        await tokens.revoke_device(result["user_id"], result["device_id"])
    if not wanted:
        return
    result.update(
        await tokens.issue(result["user_id"], result["device_id"], result["access_token"])
    )
