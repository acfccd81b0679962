"""The request object handlers receive: parsed path/query, lazy JSON body, the requester.

Two input bounds hold for every request here, whatever the handler:

* No query parameter (name or value) may contain NUL: no identifier of the spec's grammar
  does, and PostgreSQL cannot store it in a text column (400 ``M_INVALID_PARAM`` instead of a
  500 from the database; path parameters get the same rule in ``router.py``).
* The JSON body may nest at most ``MAX_JSON_DEPTH`` levels, or ``MAX_SERVER_JSON_DEPTH`` on
  the server-server API, whose documents wrap client documents in envelopes
  (``federation/json_limits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.canonical_json import parse_json
from federation.errors import BadJSON, InvalidParam, MatrixError
from federation.json_limits import MAX_JSON_DEPTH, MAX_SERVER_JSON_DEPTH

# The server-server API (federation and key servers): bodies may be MAX_SERVER_JSON_DEPTH deep.
_SERVER_PREFIXES = ("/_matrix/federation/", "/_matrix/key/")


@dataclass(frozen=True)
class Requester:
    """Who is calling: the authenticated user, device and token row."""

    user_id: str
    device_id: str | None
    token_id: int | None = None
    is_appservice: bool = False


class MissingParam(MatrixError):
    errcode = "M_MISSING_PARAM"


class ApiRequest:
    """A parsed HTTP request.  ``body`` is already read and size-checked."""

    __slots__ = (
        "method",
        "path",
        "args",
        "headers",
        "body",
        "requester",
        "client_ip",
        "raw",
        "_json",
        "route_name",
        "access_token",
    )

    def __init__(
        self,
        method: str,
        path: str,
        args: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        client_ip: str,
        raw: Any = None,
    ) -> None:
        for name, values in args.items():
            if "\x00" in name or any("\x00" in v for v in values):
                raise InvalidParam(f"Query parameter {name[:64]!r} contains a NUL character")
        self.method = method
        self.path = path
        self.args = args
        self.headers = headers  # lower-cased names
        self.body = body
        self.client_ip = client_ip
        self.raw = raw  # the twisted.web request, for streaming responses
        self.requester: Requester | None = None
        self.access_token: str | None = None
        self.route_name: str = "unknown"
        self._json: Any = None

    # --- query ---------------------------------------------------------------------
    def query(self, name: str, default: str | None = None) -> str | None:
        values = self.args.get(name)
        return values[-1] if values else default

    def query_int(
        self,
        name: str,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise MatrixError(
                f"Query parameter {name!r} must be an integer", errcode="M_INVALID_PARAM"
            ) from None
        if minimum is not None and value < minimum:
            value = minimum
        if maximum is not None and value > maximum:
            value = maximum
        return value

    def query_bool(self, name: str, default: bool = False) -> bool:
        raw = self.query(name)
        if raw is None:
            return default
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise MatrixError(
            f"Query parameter {name!r} must be true or false", errcode="M_INVALID_PARAM"
        )

    # --- body ----------------------------------------------------------------------
    def json(self, *, allow_empty: bool = False) -> dict:
        """The body as a JSON object (M_NOT_JSON / M_BAD_JSON on anything else)."""
        if self._json is None:
            if not self.body.strip():
                if allow_empty:
                    self._json = {}
                    return self._json
            server = self.path.startswith(_SERVER_PREFIXES)
            value = parse_json(
                self.body, max_depth=MAX_SERVER_JSON_DEPTH if server else MAX_JSON_DEPTH
            )
            if not isinstance(value, dict):
                raise BadJSON("Request body must be a JSON object")
            self._json = value
        return self._json

    @property
    def user_id(self) -> str:
        assert self.requester is not None, "route was registered without auth"
        return self.requester.user_id
