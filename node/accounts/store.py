"""Accounts storage: plain functions ``fn(conn, ...)`` run via ``db.run`` (or directly by the CLI).

Each function is one step of a transaction; none of them touches the reactor.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from schema.accounts import access_tokens, devices, registration_tokens, users

from .erasure import record_erasure


# --- users ---------------------------------------------------------------------------------
def insert_user(
    conn: Connection,
    *,
    user_id: str,
    localpart: str,
    role: str,
    displayname: str | None,
    password_hash: str | None,
    now_ms: int,
) -> None:
    conn.execute(
        insert(users).values(
            user_id=user_id,
            localpart=localpart,
            role=role,
            displayname=displayname,
            avatar_url=None,
            profile_fields=None,
            password_hash=password_hash,
            created_ts=now_ms,
            deactivated=False,
        )
    )


def get_user(conn: Connection, user_id: str) -> dict | None:
    row = conn.execute(select(users).where(users.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def user_exists(conn: Connection, user_id: str) -> bool:
    return (
        conn.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first() is not None
    )


def list_users(conn: Connection) -> list[dict]:
    rows = (
        conn.execute(
            select(
                users.c.user_id,
                users.c.role,
                users.c.displayname,
                users.c.created_ts,
                users.c.deactivated,
            ).order_by(users.c.user_id)
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def all_roles(conn: Connection) -> dict[str, str]:
    return {r.user_id: r.role for r in conn.execute(select(users.c.user_id, users.c.role))}


def set_password_hash(conn: Connection, user_id: str, password_hash: str) -> None:
    conn.execute(
        update(users).where(users.c.user_id == user_id).values(password_hash=password_hash)
    )


def search_users(conn: Connection, term: str, limit: int) -> list[dict]:
    like = "%" + term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = (
        conn.execute(
            select(users.c.user_id, users.c.displayname, users.c.avatar_url)
            .where(users.c.deactivated.is_(False))
            .where(
                or_(
                    func.lower(users.c.user_id).like(like, escape="\\"),
                    func.lower(users.c.displayname).like(like, escape="\\"),
                )
            )
            .order_by(users.c.user_id)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def deactivate_user(conn: Connection, user_id: str, erase: bool) -> list[str] | None:
    """Mark the account deactivated and delete every device and access token (returns the
    token hashes; None if there is no such user).  ``erase`` also clears the profile and
    records the erasure (``erasure.py``)."""
    values: dict[str, Any] = {"deactivated": True}
    if erase:
        values.update(displayname=None, avatar_url=None, profile_fields=None)
    if conn.execute(update(users).where(users.c.user_id == user_id).values(**values)).rowcount != 1:
        return None
    hashes = [
        r.token_hash
        for r in conn.execute(
            select(access_tokens.c.token_hash).where(access_tokens.c.user_id == user_id)
        )
    ]
    conn.execute(delete(access_tokens).where(access_tokens.c.user_id == user_id))
    conn.execute(delete(devices).where(devices.c.user_id == user_id))
    if erase:
        record_erasure(conn, user_id)
    return hashes


def deactivated_user_ids(conn: Connection) -> set[str]:
    return {
        r.user_id
        for r in conn.execute(select(users.c.user_id).where(users.c.deactivated.is_(True)))
    }


# --- profile -------------------------------------------------------------------------------
def get_profile(conn: Connection, user_id: str) -> dict | None:
    """The profile as the client API shows it, or None if the user does not exist."""
    row = conn.execute(
        select(users.c.displayname, users.c.avatar_url, users.c.profile_fields).where(
            users.c.user_id == user_id
        )
    ).first()
    if row is None:
        return None
    profile: dict[str, Any] = json.loads(row.profile_fields) if row.profile_fields else {}
    if row.displayname is not None:
        profile["displayname"] = row.displayname
    if row.avatar_url is not None:
        profile["avatar_url"] = row.avatar_url
    return profile


def set_profile(conn: Connection, user_id: str, profile: dict) -> None:
    """Store a whole profile (``displayname``/``avatar_url`` in columns, the rest as JSON)."""
    extra = {k: v for k, v in profile.items() if k not in ("displayname", "avatar_url")}
    conn.execute(
        update(users)
        .where(users.c.user_id == user_id)
        .values(
            displayname=profile.get("displayname"),
            avatar_url=profile.get("avatar_url"),
            profile_fields=json.dumps(extra, ensure_ascii=False) if extra else None,
        )
    )


# --- devices -------------------------------------------------------------------------------
def get_device(conn: Connection, user_id: str, device_id: str) -> dict | None:
    row = (
        conn.execute(
            select(devices).where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def list_devices(conn: Connection, user_id: str) -> list[dict]:
    rows = (
        conn.execute(
            select(devices)
            .where(devices.c.user_id == user_id)
            .order_by(devices.c.created_ts, devices.c.device_id)
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def ensure_device(
    conn: Connection,
    user_id: str,
    device_id: str,
    display_name: str | None,
    now_ms: int,
    ip: str | None,
) -> bool:
    """Create the device if it does not exist (login with a known device keeps its name).

    Returns True if a device was created.
    """
    if get_device(conn, user_id, device_id) is not None:
        return False
    conn.execute(
        insert(devices).values(
            user_id=user_id,
            device_id=device_id,
            display_name=display_name,
            last_seen_ip=ip,
            last_seen_ts=now_ms,
            created_ts=now_ms,
        )
    )
    return True


def update_device_name(
    conn: Connection, user_id: str, device_id: str, display_name: str | None
) -> bool:
    res = conn.execute(
        update(devices)
        .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
        .values(display_name=display_name)
    )
    return res.rowcount > 0


def touch_devices(conn: Connection, seen: list[tuple[str, str, str, int]]) -> None:
    """Record last-seen (user_id, device_id, ip, ts) for a batch of devices."""
    for user_id, device_id, ip, ts in seen:
        conn.execute(
            update(devices)
            .where(devices.c.user_id == user_id, devices.c.device_id == device_id)
            .values(last_seen_ip=ip, last_seen_ts=ts)
        )


def delete_devices(conn: Connection, user_id: str, device_ids: list[str]) -> list[str]:
    """Delete devices and their access tokens; returns the deleted token hashes."""
    if not device_ids:
        return []
    hashes = [
        r.token_hash
        for r in conn.execute(
            select(access_tokens.c.token_hash).where(
                access_tokens.c.user_id == user_id, access_tokens.c.device_id.in_(device_ids)
            )
        )
    ]
    conn.execute(
        delete(access_tokens).where(
            access_tokens.c.user_id == user_id, access_tokens.c.device_id.in_(device_ids)
        )
    )
    conn.execute(
        delete(devices).where(devices.c.user_id == user_id, devices.c.device_id.in_(device_ids))
    )
    return hashes


def device_ids_of(conn: Connection, user_id: str) -> list[str]:
    return [
        r.device_id
        for r in conn.execute(select(devices.c.device_id).where(devices.c.user_id == user_id))
    ]


# --- access tokens -------------------------------------------------------------------------
def insert_access_token(
    conn: Connection, *, token_hash: str, user_id: str, device_id: str, now_ms: int
) -> int:
    res = conn.execute(
        insert(access_tokens).values(
            token_hash=token_hash, user_id=user_id, device_id=device_id, created_ts=now_ms
        )
    )
    return int(res.inserted_primary_key[0])  # type: ignore[index]  # set by a one-row INSERT


def lookup_access_token(conn: Connection, token_hash: str) -> tuple[str, str, int] | None:
    """(user_id, device_id, token_id) for a live token of an active user, else None."""
    row = conn.execute(
        select(access_tokens.c.user_id, access_tokens.c.device_id, access_tokens.c.id)
        .select_from(access_tokens.join(users, users.c.user_id == access_tokens.c.user_id))
        .where(access_tokens.c.token_hash == token_hash, users.c.deactivated.is_(False))
    ).first()
    return (row.user_id, row.device_id, int(row.id)) if row else None


def delete_access_token(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(access_tokens).where(access_tokens.c.token_hash == token_hash))


# --- registration tokens -------------------------------------------------------------------
def insert_registration_token(
    conn: Connection,
    *,
    token: str,
    uses_allowed: int | None,
    expiry_time: int | None,
    role: str,
    now_ms: int,
) -> None:
    conn.execute(
        insert(registration_tokens).values(
            token=token,
            uses_allowed=uses_allowed,
            pending=0,
            completed=0,
            expiry_time=expiry_time,
            role=role,
            created_ts=now_ms,
        )
    )


def get_registration_token(conn: Connection, token: str) -> dict | None:
    row = (
        conn.execute(select(registration_tokens).where(registration_tokens.c.token == token))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def list_registration_tokens(conn: Connection) -> list[dict]:
    rows = (
        conn.execute(select(registration_tokens).order_by(registration_tokens.c.created_ts))
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def use_registration_token(conn: Connection, token: str, now_ms: int) -> bool:
    """Count one completed registration with a valid token; False if it is unknown, expired
    or used up (spec "Token-authenticated registration": uses count when registration
    completes).  One conditional UPDATE in the account's own transaction, so of two
    registrations racing for the last use exactly one succeeds.  ``pending`` is no longer
    written (sessions reserve nothing); values left by older versions are ignored."""
    t = registration_tokens.c
    res = conn.execute(
        update(registration_tokens)
        .where(
            t.token == token,
            or_(t.expiry_time.is_(None), t.expiry_time > now_ms),
            or_(t.uses_allowed.is_(None), t.completed < t.uses_allowed),
        )
        .values(completed=t.completed + 1)
    )
    return res.rowcount == 1
