"""Shared checks of the federation user endpoints (server-server API "Device Management"
``user_devices.yaml`` and "End-to-End Encryption" ``user_keys.yaml``).

Both specs say the requested users "must be local to the receiving homeserver"; they name
no error for other users, so (as ``query/profile`` does) a user ID of another server, or
one that is not a user ID at all, is 400 ``M_INVALID_PARAM`` naming it.

Request size cap (Parta's, the spec sets none): at most ``MAX_USERS`` users and
``MAX_DEVICE_IDS`` device IDs (summed over the users) in one ``keys/query`` or
``keys/claim`` body; more is 413 ``M_TOO_LARGE``, before any database work.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from federation.errors import BadJSON, InvalidParam, MatrixError
from federation.identifiers import is_valid_user_id
from schema.accounts import users

from ..access import server_of

MAX_USERS = 1000  # users per keys/query or keys/claim request
MAX_DEVICE_IDS = 10_000  # device IDs per request, all users together
_LOOKUP_CHUNK = 500  # user IDs per IN (...) of the existence query


class TooLarge(MatrixError):
    errcode = "M_TOO_LARGE"
    http_status = 413


def local_user_id(value: Any, server_name: str) -> str:
    """``value`` if it is a user ID of ``server_name``; 400 ``M_INVALID_PARAM`` otherwise."""
    if not is_valid_user_id(value):
        shown = value if isinstance(value, str) else type(value).__name__
        raise InvalidParam(f"{shown[:300]!r} is not a valid user ID")
    if server_of(value) != server_name:
        raise InvalidParam(f"User {value} is not hosted on this server")
    return value


def body_map(body: dict, field: str) -> dict:
    """The request's required top-level object ``field`` (400 if absent or not an object)."""
    if field not in body:
        raise MatrixError(f"Missing required field {field!r}", errcode="M_MISSING_PARAM")
    value = body[field]
    if not isinstance(value, dict):
        raise BadJSON(f"{field!r} must be an object keyed by user ID")
    return value


def check_counts(n_users: int, n_device_ids: int) -> None:
    if n_users > MAX_USERS:
        raise TooLarge(f"At most {MAX_USERS} users may be requested at once ({n_users} given)")
    if n_device_ids > MAX_DEVICE_IDS:
        raise TooLarge(
            f"At most {MAX_DEVICE_IDS} device IDs may be requested at once ({n_device_ids} given)"
        )


def existing_users(conn: Connection, user_ids: Iterable[str]) -> set[str]:
    """The ones of ``user_ids`` that are accounts of this node (deactivated ones too)."""
    wanted = sorted(set(user_ids))
    found: set[str] = set()
    for i in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[i : i + _LOOKUP_CHUNK]
        found.update(
            r.user_id
            for r in conn.execute(select(users.c.user_id).where(users.c.user_id.in_(chunk)))
        )
    return found
