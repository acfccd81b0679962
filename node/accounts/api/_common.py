"""Small request helpers shared by the accounts handlers."""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, MatrixError

from ...http.request import MissingParam

CLIENT_V3 = "/_matrix/client/v3"
CLIENT_V1 = "/_matrix/client/v1"


class WeakPassword(MatrixError):
    errcode = "M_WEAK_PASSWORD"


def opt_str(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadJSON(f"'{key}' must be a string")
    return value


def req_str(body: dict, key: str) -> str:
    value = opt_str(body, key)
    if value is None:
        raise MissingParam(f"Missing '{key}'")
    return value


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
            return req_str(ident, "user")
        if kind in ("m.id.thirdparty", "m.id.phone"):
            raise MatrixError("Unknown third-party identifier", errcode="M_FORBIDDEN",
                              http_status=403)
        raise MatrixError("Unknown identifier type", errcode="M_UNKNOWN")
    user = opt_str(body, "user")
    if user is None:
        raise MissingParam("Missing 'identifier'")
    return user


def well_known(accounts: Any) -> dict:
    return {"m.homeserver": {"base_url": accounts.config.public_baseurl}}
