"""``GET/POST /_matrix/client/v3/login`` (client-server "Login", login.yaml).

Rules: (1) ``m.login.password`` and ``m.login.token`` (``login_token.py``) are offered;
another ``type`` is 400 ``M_UNKNOWN``;
(2) the user comes from ``identifier`` (``m.id.user``: localpart or full user ID) or the
deprecated ``user``; (3) wrong credentials are 403 ``M_FORBIDDEN``; (4) a given ``device_id``
is reused or created, otherwise one is generated; (5) attempts are rate-limited per client IP,
and failed ones lock out the user and the address for every password check (``guard``):
429 ``M_LIMIT_EXCEEDED``; (6) a deactivated account with the right password is 403
``M_USER_DEACTIVATED``.
"""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from ...http.request import MissingParam
from ..refresh import add_refresh_token
from . import login_token
from ._common import (
    CLIENT_V3,
    MAX_DEVICE_ID_BYTES,
    device_name,
    login_identifier,
    opt_str,
    req_str,
    well_known,
)

LOGIN_PASSWORD = "m.login.password"


def register(router: Any, accounts: Any) -> None:
    async def get_login(req: Any) -> tuple[int, dict]:
        return 200, {"flows": [{"type": LOGIN_PASSWORD}, login_token.login_flow()]}

    async def post_login(req: Any) -> tuple[int, dict]:
        accounts.guard.attempt(req.client_ip)  # rule 5
        body = req.json()
        kind = body.get("type")
        if kind is None:
            raise MissingParam("Missing 'type'")
        if kind == login_token.LOGIN_TOKEN:  # m.login.token: login_token.py
            result = await login_token.login_with_token(accounts, body, req.client_ip)
        elif kind != LOGIN_PASSWORD:  # rule 1
            raise MatrixError("Bad login type.", errcode="M_UNKNOWN")
        else:
            identifier = login_identifier(body)  # rule 2
            password = req_str(body, "password")
            device_id = opt_str(body, "device_id", max_bytes=MAX_DEVICE_ID_BYTES) or None
            display_name = device_name(body, "initial_device_display_name")
            result = await accounts.login_password(
                identifier, password, device_id, display_name, req.client_ip
            )  # rules 3-6
        result["home_server"] = accounts.server_name
        result["well_known"] = well_known(accounts)
        await add_refresh_token(accounts, body, result)  # "refresh_token": true
        return 200, result

    router.add("GET", CLIENT_V3 + "/login", get_login, auth=False)
    router.add("POST", CLIENT_V3 + "/login", post_login, auth=False)
