"""Outbound requests of the membership handshakes, with errors mapped for clients.

Spec: server-server API "Joining Rooms" (a 400/403 from the resident "should be passed
through to clients"; "If M_MISSING_PARAM or M_INVALID_PARAM is returned and the request
is associated with a Client-Server API request, the Client-Server API request SHOULD fail
with a 5xx error rather than being passed through").
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from federation.errors import MatrixError
from federation.transport.endpoints import Endpoint
from federation.transport.errors import FederationRequestError

log = logging.getLogger("parta.federation.membership")


class RemoteRefused(MatrixError):
    """A remote server answered with an error we pass on (or turn into a 5xx)."""


def as_client_error(server: str, status: int, body: Any) -> MatrixError:
    errcode = body.get("errcode") if isinstance(body, dict) else None
    error = body.get("error") if isinstance(body, dict) else None
    message = f"{server}: {error}" if isinstance(error, str) else f"{server} answered HTTP {status}"
    if (
        errcode in ("M_MISSING_PARAM", "M_INVALID_PARAM", "M_BAD_JSON", "M_NOT_JSON")
        or status >= 500
        or not isinstance(errcode, str)
    ):
        return RemoteRefused(message, errcode="M_UNKNOWN", http_status=502)
    extra = {}
    if isinstance(body, dict) and isinstance(body.get("room_version"), str):
        extra["room_version"] = body["room_version"]
    return RemoteRefused(
        message, errcode=errcode, http_status=status if 400 <= status < 500 else 502, **extra
    )


def unreachable(server: str, exc: FederationRequestError) -> MatrixError:
    # The same text whether the address was refused, the port closed or silent, or TLS
    # failed: a client must not learn that from us; the node's log has the detail.
    log.warning(
        "event=remote_unreachable server=%s detail=%s: %s", server, type(exc).__name__, exc.message
    )
    return RemoteRefused(f"Could not reach {server}", errcode="M_UNKNOWN", http_status=502)


async def call(
    client: Any,
    server: str,
    endpoint: Endpoint,
    *args: str,
    body: Any = None,
    query: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> dict:
    """One signed request to ``endpoint`` with ``args`` in its path; the 2xx body, else a
    ``MatrixError`` for the client."""
    try:
        status, resp = await client.request(
            server,
            endpoint.method,
            endpoint.path(*args),
            json_body=body,
            query=query,
            timeout=timeout,
        )
    except FederationRequestError as exc:
        raise unreachable(server, exc) from None
    if not 200 <= status < 300:
        raise as_client_error(server, status, resp)
    return resp
