"""``GET /account/whoami`` (whoami.yaml) and ``POST /account/password``
(password_management.yaml).

Password change rules: (1) UIA with ``m.login.password`` for the account (with an access token,
the identifier must name the token's user), or, while the node sends e-mail, with
``m.login.email.identity``: a session validated through
``/account/password/email/requestToken`` for an address on the account -- the password reset
of a user who forgot it (no access token needed); (2) ``new_password`` is required and must
be long enough (``M_WEAK_PASSWORD``); (3) ``logout_devices`` (default true) revokes every
*other* device and token; the token used for the request stays valid (a reset without a
token revokes them all); the validation session is used up.
"""

from __future__ import annotations

from typing import Any

from ..uia import EMAIL_IDENTITY, PASSWORD
from ._common import CLIENT_V3, check_new_password, opt_bool, req_str
from ._stages import email_identity_stage, password_stage


def register(router: Any, accounts: Any) -> None:
    handlers = {
        PASSWORD: password_stage(accounts),
        EMAIL_IDENTITY: email_identity_stage(accounts, "password"),
    }

    def flows() -> list[list[str]]:
        sessions = accounts.threepid_sessions
        email = sessions is not None and sessions.enabled
        return [[PASSWORD], [EMAIL_IDENTITY]] if email else [[PASSWORD]]

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
            flows(),
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
        tokens = accounts.login_tokens
        if logout_devices and tokens is not None:
            tokens.forget_user(user_id)  # unused m.login.token tokens log no device in now
        threepid = session.data.get("threepid")
        if threepid is not None:
            await accounts.threepid_sessions.consume(threepid["sid"])
        return 200, {}

    router.add("GET", CLIENT_V3 + "/account/whoami", whoami)
    router.add(
        "POST", CLIENT_V3 + "/account/password", change_password, auth=False, auth_optional=True
    )
