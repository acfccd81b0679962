"""Discovery documents (client-server API "Server Discovery", ``wellknown.yaml``,
``support.yaml``, ``policy_server.yaml``, ``oauth_server_metadata.yaml``):

* ``GET /.well-known/matrix/client``: the homeserver's base URL.
* ``GET /.well-known/matrix/support``: who runs the server, from config ``support.contacts``
  / ``support.page``; 404 ``M_NOT_FOUND`` while neither is set
  (https://spec.matrix.org/v1.16/client-server-api/#getwell-knownmatrixsupport).
* ``GET /.well-known/matrix/policy_server``: this server is no policy server: 404.
* ``GET /_matrix/client/v1/auth_metadata``: 404 ``M_UNRECOGNIZED``, the spec's answer of a
  server without the OAuth 2.0 API, so clients use the legacy login API
  (https://spec.matrix.org/v1.16/client-server-api/#authentication-api-discovery).
"""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError, NotFound

from ._common import CLIENT_V1, well_known


def support_document(support: Any) -> dict | None:
    """The ``support`` answer for config ``support`` (None: nothing configured)."""
    out: dict[str, Any] = {}
    if support.contacts:
        out["contacts"] = [dict(c) for c in support.contacts]
    if support.page:
        out["support_page"] = support.page
    return out or None


def register(router: Any, accounts: Any) -> None:
    async def get_wellknown(req: Any) -> tuple[int, dict]:
        return 200, well_known(accounts)

    async def get_support(req: Any) -> tuple[int, dict]:
        document = support_document(accounts.config.support)
        if document is None:
            raise NotFound("No support information is configured for this server")
        return 200, document

    async def get_policy_server(req: Any) -> tuple[int, dict]:
        raise NotFound("This server is not a policy server")

    async def get_auth_metadata(req: Any) -> tuple[int, dict]:
        raise MatrixError(
            "Legacy authentication is in use on this homeserver.",
            errcode="M_UNRECOGNIZED",
            http_status=404,
        )

    router.add("GET", "/.well-known/matrix/client", get_wellknown, auth=False)
    router.add("GET", "/.well-known/matrix/support", get_support, auth=False)
    router.add("GET", "/.well-known/matrix/policy_server", get_policy_server, auth=False)
    router.add("GET", CLIENT_V1 + "/auth_metadata", get_auth_metadata, auth=False)
