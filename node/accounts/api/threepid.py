"""The administrative contact endpoints (client-server "Adding Account Administrative
Contact Information", administrative_contact.yaml).

Rules:
1. ``GET /account/3pid``: the caller's own addresses (``medium``, ``address``,
   ``validated_at``, ``added_at``), oldest first.
2. ``POST /account/3pid/add``: UIA with ``m.login.password`` for the caller, then the
   ``sid``/``client_secret`` of a validated ``/account/3pid/email/requestToken`` session
   (else 403 ``M_THREEPID_AUTH_FAILED``); an address on another account is 400
   ``M_THREEPID_IN_USE`` ("Homeservers should prevent the caller from adding a 3PID ...
   already ... added to another user's account"), one already on the caller's account
   succeeds again; at most ``MAX_THREEPIDS_PER_USER`` addresses (400
   ``M_LIMIT_EXCEEDED``).  The session is used up.
3. ``POST /account/3pid/delete``: removes one of the caller's addresses (404 ``M_NOT_FOUND``
   if the account has no such address); this node binds nothing at identity servers, so
   ``id_server_unbind_result`` is ``no-support`` (the spec's answer when the homeserver
   cannot determine an identity server).
4. ``POST /account/3pid/bind`` and the deprecated ``POST /account/3pid`` (which the spec
   now makes equal to ``bind``): a school node talks to no identity server: after the
   required parameters are checked, 400 ``M_SERVER_NOT_TRUSTED`` for ``bind`` and 403
   ``M_THREEPID_AUTH_FAILED`` (the credentials cannot be verified with an identity server)
   for ``POST /account/3pid``.
5. ``POST /account/3pid/unbind``: ``no-support``, the address stays on the account.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import BadJSON, InvalidParam, NotFound

from ...http.request import MissingParam
from .. import threepid_store
from ..threepid_sessions import EMAIL, MAX_EMAIL_CHARS, check_opaque, threepid_error
from ..uia import PASSWORD
from ._common import CLIENT_V3, check_text, opt_str, req_str
from ._stages import password_stage

log = logging.getLogger("parta.accounts")

MAX_THREEPIDS_PER_USER = 10
MEDIA = ("email", "msisdn")


def _medium_address(body: dict) -> tuple[str, str]:
    medium = req_str(body, "medium")
    if medium not in MEDIA:
        raise InvalidParam("'medium' must be email or msisdn")
    address = check_text(req_str(body, "address"), "address", max_chars=MAX_EMAIL_CHARS)
    opt_str(body, "id_server")
    if medium == EMAIL and "@" in address:
        local, _, domain = address.strip().rpartition("@")
        address = f"{local}@{domain.lower()}"
    return medium, address


def _require(body: dict, *keys: str) -> None:
    for key in keys:
        if key not in body:
            raise MissingParam(f"Missing '{key}'")
        if not isinstance(body[key], str):
            raise BadJSON(f"'{key}' must be a string")


def register(router: Any, accounts: Any) -> None:
    handlers = {PASSWORD: password_stage(accounts)}
    sessions = accounts.threepid_sessions

    async def get_threepids(req: Any) -> tuple[int, dict]:  # rule 1
        rows = await accounts.db.run(threepid_store.list_threepids, req.user_id)
        return 200, {"threepids": rows}

    async def add(req: Any) -> tuple[int, dict]:  # rule 2
        body = req.json()
        sid = check_opaque(body.get("sid"), "sid")
        client_secret = check_opaque(body.get("client_secret"), "client_secret")
        session = await accounts.uia.authenticate(
            "3pid_add",
            body.get("auth"),
            [[PASSWORD]],
            handlers,
            user_id=req.user_id,
            client_ip=req.client_ip,
        )
        row = await sessions.validated(sid, client_secret, "add")
        user_id, now = req.user_id, accounts.now_ms()

        def txn(conn: Any) -> None:
            owner = threepid_store.threepid_owner(conn, row["medium"], row["address"])
            if owner == user_id:
                return
            if owner is not None:
                raise threepid_error("M_THREEPID_IN_USE", "This address is used by another account")
            if threepid_store.count_threepids(conn, user_id) >= MAX_THREEPIDS_PER_USER:
                raise threepid_error(
                    "M_LIMIT_EXCEEDED", f"At most {MAX_THREEPIDS_PER_USER} addresses per account"
                )
            threepid_store.insert_threepid(
                conn,
                user_id=user_id,
                medium=row["medium"],
                address=row["address"],
                validated_at=row["validated_ts"],
                now_ms=now,
            )

        await accounts.db.run(txn)
        accounts.uia.finish(session)
        await sessions.consume(sid)
        log.info("event=threepid_added user_id=%s medium=%s", user_id, row["medium"])
        return 200, {}

    async def delete(req: Any) -> tuple[int, dict]:  # rule 3
        medium, address = _medium_address(req.json())
        if not await accounts.db.run(threepid_store.delete_threepid, req.user_id, medium, address):
            raise NotFound("This address is not on your account")
        log.info("event=threepid_deleted user_id=%s medium=%s", req.user_id, medium)
        return 200, {"id_server_unbind_result": "no-support"}

    async def bind(req: Any) -> tuple[int, dict]:  # rule 4
        _require(req.json(), "client_secret", "id_server", "id_access_token", "sid")
        raise threepid_error(
            "M_SERVER_NOT_TRUSTED", "This server does not work with identity servers"
        )

    async def post_threepid(req: Any) -> tuple[int, dict]:  # rule 4, deprecated endpoint
        creds = req.json().get("three_pid_creds", req.json().get("threePidCreds"))
        if creds is None:
            raise MissingParam("Missing 'three_pid_creds'")
        if not isinstance(creds, dict):
            raise BadJSON("'three_pid_creds' must be an object")
        raise threepid_error(
            "M_THREEPID_AUTH_FAILED",
            "The third-party credentials could not be verified by an identity server",
            403,
        )

    async def unbind(req: Any) -> tuple[int, dict]:  # rule 5
        _medium_address(req.json())
        return 200, {"id_server_unbind_result": "no-support"}

    router.add("GET", CLIENT_V3 + "/account/3pid", get_threepids)
    router.add("POST", CLIENT_V3 + "/account/3pid", post_threepid)
    router.add("POST", CLIENT_V3 + "/account/3pid/add", add)
    router.add("POST", CLIENT_V3 + "/account/3pid/delete", delete)
    router.add("POST", CLIENT_V3 + "/account/3pid/bind", bind)
    router.add("POST", CLIENT_V3 + "/account/3pid/unbind", unbind)
