"""Key endpoints (unauthenticated): ``GET /_matrix/key/v2/server``, ``POST
/_matrix/key/v2/query`` and ``GET /_matrix/key/v2/query/{serverName}``.

Spec: server-server API "Retrieving server keys" > "Publishing Keys" (``keys_server.yaml``:
our keys, signed, with ``valid_until_ts`` and ``old_verify_keys`` after a rotation) and
"Querying Keys Through Another Server" (``keys_query.yaml``: this node as a notary --
other servers' responses as received, with our signature added).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E

from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    key_server = fctx.key_server
    notary = fctx.notary

    async def server_keys(req: Any, **_ignored: str) -> tuple[int, dict]:
        return 200, key_server.server_keys_response()

    async def query_post(req: Any) -> tuple[int, dict]:
        return await notary.handle_post(req.json())

    async def query_get(req: Any, serverName: str) -> tuple[int, dict]:
        return await notary.handle_get(serverName, req.query("minimum_valid_until_ts"))

    serve(routes, E.KEY_SERVER, server_keys)
    serve(routes, E.KEY_SERVER_SLASH, server_keys)
    # Deprecated form with a key ID: the response is the same (all keys).
    serve(routes, E.KEY_SERVER_KEY_ID, server_keys)
    serve(routes, E.KEY_QUERY, query_post)
    serve(routes, E.KEY_QUERY_SERVER, query_get)
