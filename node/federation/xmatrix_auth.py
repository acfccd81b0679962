"""Inbound request authentication for the federation listener.

Spec: server-server API "Authentication" > "Request Authentication": every request (except
the key and version endpoints) carries ``Authorization: X-Matrix origin=..,destination=..,
key=..,sig=..`` signing ``{method, uri, origin, destination, content?}``; the receiver
verifies it with the origin's key (fetched through the key ring when unknown).  Unsigned or
mis-signed requests get 401 ``M_UNAUTHORIZED`` (``federation.transport.xmatrix``).  An
origin the server policy refuses gets 403 ``M_FORBIDDEN`` -- checked on the header's
origin before the signature, so refused servers never cause key fetches.

``FederationRoutes.add(method, template, handler)`` registers a handler
``async def h(req, origin, **path_params)`` that only runs for authenticated requests;
``add_public`` registers an unauthenticated one (``h(req, **path_params)``).

Server ACLs (server-server API "Server Access Control Lists (ACLs)"): with a ``room_guard``
(``acl_check.RoomAclGuard``), handlers of the endpoints the spec protects
(``acl_check.protects``) only run when the ``roomId``'s current ACL allows the origin (403
``M_FORBIDDEN`` otherwise).

``XMatrixAuthenticator.observers``: callables ``fn(origin)`` run after each successful
authentication (e.g. the gateway's "last federation contact" per school).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from federation.transport.endpoints import Endpoint
from federation.transport.xmatrix import parse_authorization, verify_request_async

from .acl_check import protects as acl_protects
from .policy import ServerPolicy, require_inbound


class XMatrixAuthenticator:
    def __init__(self, server_name: str, keyring: Any, policy: ServerPolicy) -> None:
        self.server_name = server_name
        self.keyring = keyring
        self.policy = policy
        self.observers: list[Callable[[str], None]] = []

    async def authenticate(self, req: Any) -> str:
        """The verified origin server of ``req`` (401 / 403 otherwise)."""
        raw = getattr(req, "raw", None)
        headers: Any = None
        uri: Any = None
        if raw is not None:
            headers = raw.requestHeaders.getRawHeaders(b"authorization")
            uri = raw.uri
        if headers is None:
            value = req.headers.get("authorization")
            headers = [value] if value is not None else None
        if uri is None:
            uri = getattr(req, "uri", None) or req.path
        # The policy first: a refused origin gets 403 without any key fetch.
        require_inbound(self.policy, parse_authorization(headers)[0].origin)
        body = req.json() if req.body.strip() else None
        origin = await verify_request_async(
            req.method,
            uri,
            body,
            headers,
            self.server_name,
            self.keyring.get_verify_key,
            raw_body=req.body if body is not None else None,
        )
        require_inbound(self.policy, origin)
        for fn in self.observers:
            fn(origin)
        return origin


SignedHandler = Callable[..., Awaitable[Any]]


class FederationRoutes:
    """Registers federation endpoints on the federation listener's ``Router``."""

    def __init__(
        self, router: Any, authenticator: XMatrixAuthenticator, room_guard: Any = None
    ) -> None:
        self.router = router
        self.authenticator = authenticator
        self.room_guard = room_guard  # server ACLs: ``acl_check.RoomAclGuard``

    def add(self, method: str, template: str, handler: SignedHandler) -> None:
        auth = self.authenticator
        guard = self.room_guard if acl_protects(template) else None

        async def signed(req: Any, **params: str) -> Any:
            origin = await auth.authenticate(req)
            if guard is not None:  # server ACLs on the spec's protected endpoints
                await guard.check(origin, params.get("roomId"))
            return await handler(req, origin, **params)

        signed.__name__ = getattr(handler, "__name__", "signed")
        self.router.add(method, template, signed, auth=False)

    def add_public(self, method: str, template: str, handler: SignedHandler) -> None:
        self.router.add(method, template, handler, auth=False)


def serve(routes: Any, endpoint: Endpoint, handler: SignedHandler) -> None:
    """Register ``handler`` for an entry of the endpoint table: a signed endpoint through
    ``routes.add`` (policy, X-Matrix signature, server ACL), the key and version endpoints
    through ``routes.add_public``.  Taking the entry rather than a method and path keeps
    every route's path and authentication in the one table."""
    if endpoint.signed:
        routes.add(endpoint.method, endpoint.template, handler)
    else:
        routes.add_public(endpoint.method, endpoint.template, handler)
