"""``POST /_matrix/client/v3/refresh`` (client-server API "Refreshing access tokens",
``refresh.yaml``): no access token, the refresh token is the credential.

``{"refresh_token"}`` -> ``{"access_token", "refresh_token", "expires_in_ms"}``; an
unknown, already replaced-and-used or orphaned refresh token is 401 ``M_UNKNOWN_TOKEN``
with ``soft_logout: false`` (the session is gone: log in again).  Attempts count against
the same per-address limit as logins, so refresh tokens cannot be guessed at speed.
"""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from ._common import CLIENT_V3, MAX_DEVICE_ID_BYTES, req_str


def register(router: Any, accounts: Any) -> None:
    async def post_refresh(req: Any) -> tuple[int, dict]:
        if accounts.guard is not None:
            accounts.guard.attempt(req.client_ip)
        token = req_str(req.json(), "refresh_token", max_bytes=MAX_DEVICE_ID_BYTES)
        result = await accounts.refresh_tokens.refresh(token)
        if result is None:
            raise MatrixError(
                "Unknown refresh token",
                errcode="M_UNKNOWN_TOKEN",
                http_status=401,
                soft_logout=False,
            )
        return 200, result

    router.add("POST", CLIENT_V3 + "/refresh", post_refresh, auth=False)
