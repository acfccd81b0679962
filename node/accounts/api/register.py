"""``POST /register``, ``GET /register/available`` and the registration-token validity check
(client-server "Account registration", registration.yaml, registration_tokens.yaml).

Rules for ``POST /register``:
1. ``kind=guest`` is refused (403 ``M_FORBIDDEN``): schools have no guest accounts.
2. The username is checked *before* UIA: ``M_INVALID_USERNAME``, ``M_USER_IN_USE``; no
   username means a generated localpart.  The password must be long enough
   (``M_WEAK_PASSWORD``).
3. UIA flows: ``[m.login.registration_token, m.login.dummy]`` always (schools hand out
   tokens); ``[m.login.dummy]`` only when ``registration.open_registration`` is on.  With
   ``email.registration`` (and e-mail configured) every flow ends with
   ``m.login.email.identity`` instead of ``m.login.dummy``: the account gets the validated
   address as a contact address (for password resets).
4. On success the account gets the token's role (default role for open registration), one
   use of the token is counted (only now: the token stage reserves nothing) and unless
   ``inhibit_login`` a device and access token are returned.  If the token was used up by
   another registration meanwhile, nothing is created and the 401 asks for the token stage
   again.
"""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from ...http.request import MissingParam
from .. import threepid_store
from ..ids import check_localpart, generate_localpart
from ..refresh import add_refresh_token
from ..roles import DEFAULT_ROLE
from ..service import RegistrationTokenUsedUp
from ..uia import DUMMY, EMAIL_IDENTITY, REGISTRATION_TOKEN
from ._common import (
    CLIENT_V1,
    CLIENT_V3,
    MAX_DEVICE_ID_BYTES,
    check_new_password,
    device_name,
    opt_bool,
    opt_str,
)
from ._stages import dummy_stage, email_identity_stage, registration_token_stage


def registration_flows(open_registration: bool, email: bool = False) -> list[list[str]]:
    last = EMAIL_IDENTITY if email else DUMMY
    flows = [[REGISTRATION_TOKEN, last]]
    if open_registration:
        flows.append([last])
    return flows


async def _add_registered_address(accounts: Any, user_id: str, threepid: dict) -> None:
    """Rule 3: the validated address becomes the new account's contact address (unless
    another registration took it meanwhile); the validation session is used up."""
    now = accounts.now_ms()

    def txn(conn: Any) -> None:
        if threepid_store.threepid_owner(conn, threepid["medium"], threepid["address"]):
            return
        threepid_store.insert_threepid(
            conn,
            user_id=user_id,
            medium=threepid["medium"],
            address=threepid["address"],
            validated_at=threepid["validated_at"],
            now_ms=now,
        )

    await accounts.db.run(txn)
    await accounts.threepid_sessions.consume(threepid["sid"])


def register(router: Any, accounts: Any) -> None:
    handlers = {
        DUMMY: dummy_stage,
        REGISTRATION_TOKEN: registration_token_stage(accounts),
        EMAIL_IDENTITY: email_identity_stage(accounts, "register"),
    }

    async def post_register(req: Any) -> tuple[int, dict]:
        accounts.guard.attempt(req.client_ip)
        kind = req.query("kind", "user")
        if kind == "guest":  # rule 1
            raise MatrixError("Guest access is disabled", errcode="M_FORBIDDEN", http_status=403)
        if kind != "user":
            raise MatrixError("Unknown kind of account", errcode="M_INVALID_PARAM")
        body = req.json()
        username = opt_str(body, "username")  # rule 2
        if username:
            localpart = check_localpart(username.lower(), accounts.server_name)
            if await accounts.user_exists(accounts.user_id_for(localpart)):
                raise MatrixError("Desired user ID is already taken.", errcode="M_USER_IN_USE")
        else:
            localpart = generate_localpart()
        inhibit_login = opt_bool(body, "inhibit_login", False)
        password = opt_str(body, "password")
        if password is None:
            raise MissingParam("Missing 'password'")
        check_new_password(accounts, password)
        device_id = opt_str(body, "device_id", max_bytes=MAX_DEVICE_ID_BYTES) or None
        display_name = device_name(body, "initial_device_display_name")

        flows = registration_flows(  # rule 3
            accounts.config.registration.open_registration,
            email=accounts.threepid_sessions is not None
            and accounts.threepid_sessions.registration,
        )
        session = await accounts.uia.authenticate(
            "register", body.get("auth"), flows, handlers, client_ip=req.client_ip
        )
        token = session.data.get("registration_token")  # rule 4
        try:
            user_id = await accounts.create_user(
                localpart,
                password,
                session.data.get("role", DEFAULT_ROLE),
                registration_token=token,
            )
        except RegistrationTokenUsedUp as exc:
            session.data.pop("registration_token", None)
            raise accounts.uia.refuse(session, flows, REGISTRATION_TOKEN, exc.message) from None
        accounts.uia.finish(session)
        if "threepid" in session.data:
            await _add_registered_address(accounts, user_id, session.data["threepid"])
        result: dict[str, Any] = {"user_id": user_id, "home_server": accounts.server_name}
        if not inhibit_login:
            access_token, device_id = await accounts.issue_token(
                user_id, device_id, display_name, req.client_ip
            )
            result.update(access_token=access_token, device_id=device_id)
            await add_refresh_token(accounts, body, result)  # "refresh_token": true
        return 200, result

    async def get_available(req: Any) -> tuple[int, dict]:
        accounts.guard.attempt(req.client_ip)
        username = req.query("username")
        if not username:
            raise MissingParam("Missing 'username'")
        localpart = check_localpart(username.lower(), accounts.server_name)
        if await accounts.user_exists(accounts.user_id_for(localpart)):
            raise MatrixError("Desired user ID is already taken.", errcode="M_USER_IN_USE")
        return 200, {"available": True}

    async def get_token_validity(req: Any) -> tuple[int, dict]:
        accounts.guard.attempt(req.client_ip)
        token = req.query("token")
        if token is None:
            raise MissingParam("Missing 'token'")
        return 200, {"valid": await accounts.registration_token_valid(token, req.client_ip)}

    router.add("POST", CLIENT_V3 + "/register", post_register, auth=False)
    router.add("GET", CLIENT_V3 + "/register/available", get_available, auth=False)
    router.add(
        "GET",
        CLIENT_V1 + "/register/m.login.registration_token/validity",
        get_token_validity,
        auth=False,
    )
