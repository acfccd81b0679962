"""``GET /account/whoami`` (whoami.yaml) and ``POST /account/password``
(password_management.yaml).

Password change rules: (1) UIA with ``m.login.password`` for the account (with an access token,
the identifier must name the token's user); (2) ``new_password`` is required and must be long
enough (``M_WEAK_PASSWORD``); (3) ``logout_devices`` (default true) revokes every *other*
device and token; the token used for the request stays valid.
"""

from __future__ import annotations

from typing import Any

from ..uia import PASSWORD
from ._common import CLIENT_V3, check_new_password, opt_bool, req_str
from ._stages import password_stage


def register(router: Any, accounts: Any) -> None:
    handlers = {PASSWORD: password_stage(accounts)}

    async def whoami(req: Any) -> tuple[int, dict]:
        body = {"user_id": req.user_id, "is_guest": False}
        if req.requester.device_id is not None:
            body["device_id"] = req.requester.device_id
        return 200, body

    async def change_password(req: Any) -> tuple[int, dict]:
        body = req.json()
        new_password = req_str(body, "new_password")  # rule 2
        check_new_password(accounts, new_password)
        logout_devices = opt_bool(body, "logout_devices", True)
        requester = req.requester
        session = await accounts.uia.authenticate(  # rule 1
            "password",
            body.get("auth"),
            [[PASSWORD]],
            handlers,
            user_id=requester.user_id if requester else None,
            client_ip=req.client_ip,
        )
        user_id = requester.user_id if requester else session.data["user_id"]
        await accounts.change_password(  # rule 3
            user_id,
            new_password,
            logout_devices=logout_devices,
            keep_device_id=requester.device_id if requester else None,
        )
        accounts.uia.finish(session)
        return 200, {}

    router.add("GET", CLIENT_V3 + "/account/whoami", whoami)
    router.add(
        "POST", CLIENT_V3 + "/account/password", change_password, auth=False, auth_optional=True
    )
