"""Blocking account administration for the CLI (``parta node user ...``/``token ...``).

Runs on a plain SQLAlchemy connection (no reactor); the same rules as the service apply:
valid localpart and role, argon2 password hash, registration token grammar.
"""

from __future__ import annotations

from typing import Any

from . import passwords, store, threepid_store
from .ids import check_localpart, localpart_from_input, make_user_id
from .roles import check_role
from .tokens import generate_registration_token, is_valid_registration_token_string


class AdminError(Exception):
    """A refused admin action (printed as one line by the CLI)."""


def create_user(
    conn: Any,
    *,
    server_name: str,
    localpart: str,
    password: str,
    role: str,
    display_name: str | None,
    now_ms: int,
    password_min_length: int = 0,
) -> str:
    from federation.errors import MatrixError

    try:
        check_localpart(localpart, server_name)
    except MatrixError as exc:
        raise AdminError(f"invalid localpart {localpart!r}: {exc.message}") from None
    try:
        check_role(role)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if len(password) < password_min_length:
        raise AdminError(f"password must be at least {password_min_length} characters long")
    user_id = make_user_id(localpart, server_name)
    if store.user_exists(conn, user_id):
        raise AdminError(f"user {user_id} already exists")
    store.insert_user(
        conn,
        user_id=user_id,
        localpart=localpart,
        role=role,
        displayname=display_name if display_name is not None else localpart,
        password_hash=passwords.hash_password(password),
        now_ms=now_ms,
    )
    return user_id


def create_registration_token(
    conn: Any,
    *,
    uses_allowed: int | None,
    expiry_time: int | None,
    role: str,
    now_ms: int,
    token: str | None = None,
) -> str:
    try:
        check_role(role)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if uses_allowed is not None and uses_allowed < 1:
        raise AdminError("--uses must be at least 1")
    if expiry_time is not None and expiry_time <= now_ms:
        raise AdminError("expiry time is in the past")
    if token is None:
        token = generate_registration_token()
    elif not is_valid_registration_token_string(token):
        raise AdminError("a registration token is 1-64 characters of A-Z a-z 0-9 . _ ~ -")
    if store.get_registration_token(conn, token) is not None:
        raise AdminError(f"registration token {token!r} already exists")
    store.insert_registration_token(
        conn,
        token=token,
        uses_allowed=uses_allowed,
        expiry_time=expiry_time,
        role=role,
        now_ms=now_ms,
    )
    return token


def deactivate_user(conn: Any, *, server_name: str, user: str, erase: bool) -> str:
    """``parta node user deactivate``: step 1 of ``deactivation.py`` on the database (a
    running node does steps 2-3 within ``deactivation.SWEEP_SECONDS``).  ``user`` is a
    localpart or a full user ID of this server."""
    localpart = localpart_from_input(user, server_name)
    if not localpart or "\x00" in localpart:
        raise AdminError(f"{user!r} is not a user of {server_name}")
    user_id = make_user_id(localpart, server_name)
    existing = store.get_user(conn, user_id)
    if existing is None:
        raise AdminError(f"no such user {user_id}")
    if existing["deactivated"] and not erase:
        raise AdminError(f"{user_id} is already deactivated")
    store.deactivate_user(conn, user_id, erase)
    threepid_store.delete_user_threepids(conn, user_id)  # its contact addresses are free again
    return user_id
