"""Small helpers shared by the rooms API handlers."""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def optional_str(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise MatrixError(f"'{key}' must be a string", errcode="M_BAD_JSON")
    return value


def required_str(body: dict, key: str) -> str:
    value = body.get(key)
    if value is None:
        raise MatrixError(f"Missing '{key}'", errcode="M_MISSING_PARAM")
    if not isinstance(value, str):
        raise MatrixError(f"'{key}' must be a string", errcode="M_BAD_JSON")
    return value


def device_of(req: Any) -> str | None:
    return req.requester.device_id if req.requester is not None else None
