"""The HTTPS federation listener: its own ``Router`` + ``ApiResource`` (node/http), TLS
from ``federation.listener``'s certificate and key (spec: server-server API "TLS":
federation is always HTTPS).

Requests carry no access tokens: authentication is X-Matrix, done per route
(``xmatrix_auth.FederationRoutes``).  Bodies may be larger than client requests: a
transaction holds up to 50 PDUs of up to 64 KiB and 100 EDUs.  The limit is enforced by
the listener's site (``node.http.site``) as soon as the headers are in, before X-Matrix
is checked: an unauthenticated peer cannot make the node buffer more than
``MAX_FEDERATION_BODY``.
"""

from __future__ import annotations

from typing import Any

from node.http.router import Router
from node.http.server import ApiResource

MAX_FEDERATION_BODY = 8 * 1024 * 1024


def make_resource(
    router: Router, *, observe: Any = None, max_body_bytes: int = MAX_FEDERATION_BODY
) -> ApiResource:
    return ApiResource(router, authenticate=None, max_body_bytes=max_body_bytes, observe=observe)


def listen(reactor: Any, listener: Any, site: Any) -> Any:
    """Listen with TLS on ``listener`` (a ``ListenerConfig``); the listening port."""
    from federation.transport.tls import server_tls_options

    options = server_tls_options(listener.tls_certificate_path, listener.tls_private_key_path)
    return reactor.listenSSL(listener.port, site, options, interface=listener.bind_address)
