"""Small request helpers shared by the accounts handlers."""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, InvalidParam, MatrixError

from ...http.request import MissingParam
from ..ids import MAX_USER_ID_BYTES

CLIENT_V3 = "/_matrix/client/v3"
CLIENT_V1 = "/_matrix/client/v1"

# Lengths of account strings (the columns: user/device IDs 255, names 512 characters).
# The spec caps user IDs at 255 bytes ("User Identifiers"); device IDs get the same cap
# and device names the profile display name's 256 characters.
MAX_DEVICE_ID_BYTES = 255
MAX_DEVICE_NAME_CHARS = 256


class WeakPassword(MatrixError):
    errcode = "M_WEAK_PASSWORD"


def check_text(
    value: str, key: str, *, max_bytes: int | None = None, max_chars: int | None = None
) -> str:
    """400 ``M_INVALID_PARAM`` for a NUL character (PostgreSQL cannot store one: without
    this check the database answers a 500) or a value over its length cap."""
    if "\x00" in value:
        raise InvalidParam(f"'{key}' must not contain NUL characters")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidParam(f"'{key}' may be at most {max_chars} characters long")
    if (
        max_bytes is not None
        and len(value) * 4 > max_bytes
        and len(value.encode("utf-8")) > max_bytes
    ):
        raise InvalidParam(f"'{key}' may be at most {max_bytes} bytes long")
    return value


def opt_str(
    body: dict, key: str, *, max_bytes: int | None = None, max_chars: int | None = None
) -> str | None:
    """An optional string field; never one with NUL characters (``check_text``)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadJSON(f"'{key}' must be a string")
    return check_text(value, key, max_bytes=max_bytes, max_chars=max_chars)


def req_str(body: dict, key: str, *, max_bytes: int | None = None) -> str:
    value = opt_str(body, key, max_bytes=max_bytes)
    if value is None:
        raise MissingParam(f"Missing '{key}'")
    return value


def device_id_param(value: str, key: str = "device_id") -> str:
    return check_text(value, key, max_bytes=MAX_DEVICE_ID_BYTES)


def device_name(body: dict, key: str) -> str | None:
    return opt_str(body, key, max_chars=MAX_DEVICE_NAME_CHARS)


def opt_bool(body: dict, key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadJSON(f"'{key}' must be a boolean")
    return value


def check_new_password(accounts: Any, password: str) -> None:
    minimum = accounts.config.registration.password_min_length
    if len(password) < minimum:
        raise WeakPassword(f"Password must be at least {minimum} characters long")


def login_identifier(body: dict) -> str:
    """The user named by a login/UIA ``identifier`` (``m.id.user``) or the legacy ``user``.

    Spec "Identifier types": a third-party identifier we do not know is 403 ``M_FORBIDDEN``
    (this node keeps no 3PIDs).
    """
    ident = body.get("identifier")
    if ident is not None:
        if not isinstance(ident, dict):
            raise BadJSON("'identifier' must be an object")
        kind = ident.get("type")
        if kind == "m.id.user":
            return req_str(ident, "user", max_bytes=MAX_USER_ID_BYTES)
        if kind in ("m.id.thirdparty", "m.id.phone"):
            raise MatrixError(
                "Unknown third-party identifier", errcode="M_FORBIDDEN", http_status=403
            )
        raise MatrixError("Unknown identifier type", errcode="M_UNKNOWN")
    user = opt_str(body, "user", max_bytes=MAX_USER_ID_BYTES)
    if user is None:
        raise MissingParam("Missing 'identifier'")
    return user


def well_known(accounts: Any) -> dict:
    return {"m.homeserver": {"base_url": accounts.config.public_baseurl}}
