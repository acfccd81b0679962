"""Route table: ``(method, path template) -> async handler``.

Templates use the spec's own spelling (``/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}``)
so a reader holding the spec finds the handler by its path.  Path parameters are URL-decoded and
passed to the handler as keyword arguments (camelCase names as in the spec).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

Handler = Callable[..., Awaitable[Any]]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern
    handler: Handler
    auth: bool              # requires a valid access token
    auth_optional: bool     # authenticates if a token is present
    rate_limited: bool
    name: str               # metric label: the template, stable and low-cardinality


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._by_prefix: dict[str, list[Route]] = {}

    def add(self, method: str, template: str, handler: Handler, *, auth: bool = True,
            auth_optional: bool = False, rate_limited: bool = False,
            name: str | None = None) -> None:
        # The last path parameter may swallow slashes when named "*Path" (e.g. state keys
        # are single segments, but media IDs never contain '/').
        pattern = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template)
                             .replace(r"\{", "{").replace(r"\}", "}"))
        route = Route(method.upper(), template, re.compile(f"^{pattern}$"), handler, auth,
                      auth_optional, rate_limited, name or template)
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
        """Return (route, params, path_known).  ``path_known`` without a route means 405."""
        path_known = False
        for route in self._routes:
            m = route.regex.match(path)
            if m is None:
                continue
            path_known = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, {k: unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_known

    def routes(self) -> list[Route]:
        return list(self._routes)
