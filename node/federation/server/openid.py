"""``GET /_matrix/federation/v1/openid/userinfo?access_token=`` (server-server API
"OpenID", ``openid.yaml``): https://spec.matrix.org/v1.16/server-server-api/#openid

Called by a third party (not a homeserver, so without X-Matrix signatures) holding a
user's OpenID token: 200 ``{"sub": user ID}`` for a live token, 401 ``M_UNKNOWN_TOKEN`` for
an unknown or expired one.  The token store is the client API's (``node.accounts.openid``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E
from node.accounts.openid import OpenIdTokens

from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    tokens = OpenIdTokens(fctx.ctx.db, fctx.ctx.clock.time_ms)

    async def userinfo(req: Any) -> tuple[int, dict]:
        return 200, {"sub": await tokens.owner(req.query("access_token"))}

    serve(routes, E.OPENID_USERINFO, userinfo)
