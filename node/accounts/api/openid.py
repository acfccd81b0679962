"""``POST /user/{userId}/openid/request_token`` (client-server API "OpenID",
``openid.yaml``): https://spec.matrix.org/v1.16/client-server-api/#openid

Only for the authenticated user themself (403 ``M_FORBIDDEN`` for another user ID); the
body is the spec's empty object (any JSON object is accepted, reserved for expansion).
Rate limited like other per-user requests; the token store also caps live tokens per user.
"""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden

from ..openid import OpenIdTokens
from ._common import CLIENT_V3


def register(router: Any, accounts: Any) -> None:
    tokens = OpenIdTokens(accounts.db, accounts.clock.time_ms)

    async def request_token(req: Any, userId: str) -> tuple[int, dict]:
        if userId != req.user_id:
            raise Forbidden("Cannot request OpenID tokens for other users")
        req.json(allow_empty=True)
        credentials = await tokens.issue(req.user_id)
        credentials["matrix_server_name"] = accounts.config.server_name
        return 200, credentials

    router.add(
        "POST", CLIENT_V3 + "/user/{userId}/openid/request_token", request_token, rate_limited=True
    )
