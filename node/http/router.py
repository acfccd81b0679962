"""Route table: ``(method, path template) -> async handler``.

Templates use the spec's own spelling
(``/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}``) so a reader holding the spec
finds the handler by its path.  Path parameters are URL-decoded and passed to the handler as
keyword arguments (camelCase names as in the spec).

A decoded parameter holding NUL (``%00``) never reaches a handler: no identifier of the spec's
grammar (appendix "Identifier Grammar") contains it, and PostgreSQL cannot store it in a text
column, so a NUL in a room alias, state key, transaction ID or account-data type would
otherwise surface as a 500 from the database.  ``match`` still answers the route (its name
labels the request's metrics) but with a handler that refuses the request with 400
``M_INVALID_PARAM``.  Other control characters pass: a state key may be any string.

Legacy ``r0`` paths: every client-server operation that existed in the r0 API (spec
r0.6.1) is also answered under ``/_matrix/client/r0/`` (older clients, e.g.
matrix-commander, still log in there).  ``match`` rewrites such a path to ``v3`` in one
place and serves it only from routes that are not in ``V3_ONLY`` (operations the spec
added after r0); a ``v3`` path pays one ``startswith``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, NoReturn
from urllib.parse import unquote

from federation.errors import InvalidParam

Handler = Callable[..., Awaitable[Any]]

_PARAM = re.compile(r"\{(\w+)\}")

R0_PREFIX = "/_matrix/client/r0/"
V3_PREFIX = "/_matrix/client/v3/"

# Client-server operations under v3 that the r0 API never had (added in v1.1 and later,
# per the spec's ``x-addedInMatrixVersion``): not answered under r0.  An entry ending in
# "/" covers every template under it (whatever its parameters are named).
V3_ONLY: tuple[str, ...] = tuple(
    V3_PREFIX + t
    for t in (
        "knock/",  # knocking, v1.1
        "refresh",  # refresh tokens, v1.3
        "keys/device_signing/",  # cross-signing, v1.1
        "keys/signatures/",
        "room_keys/",  # server-side key backups, v1.1
        "login/sso/redirect/",  # per identity provider, v1.1 (the bare form is r0)
        "rooms/{roomId}/report",  # reporting a room, v1.13 (events: r0)
        "users/{userId}/report",  # reporting a user, v1.14
    )
)


def _in_r0(template: str) -> bool:
    """Whether a route also answers under ``/_matrix/client/r0/`` (decided once, at
    registration).  Custom profile fields (v1.16) share ``profile/{userId}/{keyName}`` with
    the r0 ``displayname`` and ``avatar_url``, so that template stays."""
    if not template.startswith(V3_PREFIX):
        return False
    return not any(
        template.startswith(entry) if entry.endswith("/") else template == entry
        for entry in V3_ONLY
    )


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern
    handler: Handler
    auth: bool  # requires a valid access token
    auth_optional: bool  # authenticates if a token is present
    rate_limited: bool
    name: str  # metric label: the template, stable and low-cardinality
    r0: bool = False  # also answered under /_matrix/client/r0/ (see the module docstring)


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._by_prefix: dict[str, list[Route]] = {}

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        auth: bool = True,
        auth_optional: bool = False,
        rate_limited: bool = False,
        name: str | None = None,
    ) -> None:
        # The last path parameter may swallow slashes when named "*Path" (e.g. state keys
        # are single segments, but media IDs never contain '/').
        pattern = _PARAM.sub(
            lambda m: f"(?P<{m.group(1)}>[^/]+)",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        route = Route(
            method.upper(),
            template,
            re.compile(f"^{pattern}$"),
            handler,
            auth,
            auth_optional,
            rate_limited,
            name or template,
            _in_r0(template),
        )
        self._routes.append(route)

    def replace(self, method: str, template: str, handler: Handler, **kw: Any) -> None:
        """Like ``add``, but take the place of an existing route with the same method and
        template (e.g. the gateway's city-wide ``publicRooms`` over the node's own)."""
        self.add(method, template, handler, **kw)
        new = self._routes.pop()
        for i, route in enumerate(self._routes):
            if route.method == new.method and route.template == template:
                self._routes[i] = new
                return
        self._routes.append(new)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, params, path_known).  ``path_known`` without a route means 405.

        A parameter with NUL yields the route with a refusing handler and no params (see
        the module docstring); ``match`` itself never raises.
        """
        r0 = path.startswith(R0_PREFIX)
        if r0:
            path = V3_PREFIX + path[len(R0_PREFIX) :]
        path_known = False
        for route in self._routes:
            m = route.regex.match(path)
            if m is None or (r0 and not route.r0):
                continue
            path_known = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                for name, value in params.items():
                    if "\x00" in value:
                        return replace(route, handler=_refuse(name)), {}, True
                return route, params, True
        return None, {}, path_known

    def routes(self) -> list[Route]:
        return list(self._routes)


def _refuse(name: str) -> Handler:
    async def refuse(_req: Any) -> NoReturn:
        raise InvalidParam(f"Path parameter {name!r} contains a NUL character")

    return refuse
