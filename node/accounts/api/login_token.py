"""``POST /_matrix/client/v1/login/get_token`` (login_token.yaml) and the ``m.login.token``
login type of ``POST /login`` (client-server "Login").

Rules: (1) the caller re-authenticates with UIA (``m.login.password``) every time: a session
is finished by its success, so no earlier UIA counts (the spec: "servers MUST always
re-prompt"); (2) issuing is rate-limited per user more strictly than other calls
(``ISSUE_PER_SECOND``/``ISSUE_BURST``: 3 at once, then one a minute; 429
``M_LIMIT_EXCEEDED``) as the spec encourages; (3) the token is valid for 2 minutes and one
login (``login_tokens.py``); (4) at ``POST /login`` an unknown, used or expired token is 403
``M_FORBIDDEN`` and counts as a failed credential for the client's address (``guard``); a
deactivated account gets no session (403 ``M_USER_DEACTIVATED``).
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import Forbidden

from ... import metrics
from ...ratelimit import RateLimiter
from .. import store
from ..service import UserDeactivated
from ..uia import PASSWORD
from ._common import CLIENT_V1, MAX_DEVICE_ID_BYTES, device_name, opt_str, req_str
from ._stages import password_stage

log = logging.getLogger("parta.accounts")

LOGIN_TOKEN = "m.login.token"
ISSUE_PER_SECOND = 1 / 60
ISSUE_BURST = 3
MAX_LOGIN_TOKEN_CHARS = 128


def login_flow() -> dict:
    """The ``GET /login`` flow entry (``get_login_token``: this server issues tokens)."""
    return {"type": LOGIN_TOKEN, "get_login_token": True}


async def login_with_token(accounts: Any, body: dict, ip: str | None) -> dict:
    """``POST /login`` with ``type: m.login.token`` (rule 4): the login response fields."""
    token = req_str(body, "token")
    device_id = opt_str(body, "device_id", max_bytes=MAX_DEVICE_ID_BYTES) or None
    display_name = device_name(body, "initial_device_display_name")
    accounts.guard.check_not_locked(ip)
    user_id = None
    if len(token) <= MAX_LOGIN_TOKEN_CHARS:
        user_id = accounts.login_tokens.consume(token)
    if user_id is None:
        accounts.guard.failed(ip)
        metrics.LOGINS.labels("failure").inc()
        raise Forbidden("Invalid or expired login token")
    user = await accounts.db.run(store.get_user, user_id)
    if user is None or user["deactivated"]:
        raise UserDeactivated("This account has been deactivated")
    metrics.LOGINS.labels("success").inc()
    access_token, device_id = await accounts.issue_token(user_id, device_id, display_name, ip)
    log.info("event=login_token_login user_id=%s device_id=%s", user_id, device_id)
    return {"user_id": user_id, "access_token": access_token, "device_id": device_id}


def register(router: Any, accounts: Any) -> None:
    handlers = {PASSWORD: password_stage(accounts)}
    limits = accounts.config.rate_limits
    issue_limiter = RateLimiter(
        accounts.clock,
        per_second=ISSUE_PER_SECOND,
        burst_count=ISSUE_BURST,
        enabled=limits.enabled,
    )

    async def get_token(req: Any) -> tuple[int, dict]:
        body = req.json()
        session = await accounts.uia.authenticate(  # rule 1
            "login_token",
            body.get("auth"),
            [[PASSWORD]],
            handlers,
            user_id=req.user_id,
            client_ip=req.client_ip,
        )
        accounts.uia.finish(session)
        issue_limiter.check(req.user_id)  # rule 2
        token = accounts.login_tokens.issue(req.user_id)  # rule 3
        log.info("event=login_token_issued user_id=%s", req.user_id)
        return 200, {"login_token": token, "expires_in_ms": accounts.login_tokens.lifetime_ms}

    router.add("POST", CLIENT_V1 + "/login/get_token", get_token)
