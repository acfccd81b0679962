"""Matrix errors as data: an ``errcode``, a human message and an HTTP status.

Every bad input the protocol core meets is raised as a ``MatrixError`` subclass so the HTTP
layers can render ``{"errcode": ..., "error": ...}`` with the right status, and never crash.
"""

from __future__ import annotations

from typing import Any


class MatrixError(Exception):
    """Base of every error that maps onto a Matrix ``errcode`` response."""

    errcode: str = "M_UNKNOWN"
    http_status: int = 400

    def __init__(
        self,
        message: str,
        *,
        errcode: str | None = None,
        http_status: int | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.message = message
        if errcode is not None:
            self.errcode = errcode
        if http_status is not None:
            self.http_status = http_status
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.message}
        body.update(self.extra)
        return body


class BadJSON(MatrixError):
    """JSON that parses but is not acceptable (wrong shape, floats, out-of-range ints)."""

    errcode = "M_BAD_JSON"


class NotJSON(MatrixError):
    """Bytes that are not JSON at all."""

    errcode = "M_NOT_JSON"


class InvalidParam(MatrixError):
    errcode = "M_INVALID_PARAM"


class UnsupportedRoomVersion(MatrixError):
    errcode = "M_UNSUPPORTED_ROOM_VERSION"


class Forbidden(MatrixError):
    errcode = "M_FORBIDDEN"
    http_status = 403


class NotFound(MatrixError):
    errcode = "M_NOT_FOUND"
    http_status = 404


class Unauthorized(MatrixError):
    """Federation request or signature that does not authenticate (401 ``M_UNAUTHORIZED``)."""

    errcode = "M_UNAUTHORIZED"
    http_status = 401
