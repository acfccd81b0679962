"""``POST /_parta/v1/claim``: claim an imported account with a one-time code.

Not part of the Matrix spec: imported accounts have no password, and neither ``/login``
(``m.login.password`` needs one) nor registration (the account exists) can start them, so a
small Parta endpoint sets the first password.  Request ``{"code", "new_password"}``;
answer ``{"user_id"}``, after which the person logs in with ``m.login.password``.

* Every attempt counts against the client address's attempt bucket, and a wrong code
  against its failure bucket, shared with /login and every password check
  (``node/accounts/guard.py``): 429 ``M_LIMIT_EXCEEDED`` when used up.
* A wrong, used or replaced code is 403 ``M_FORBIDDEN``; a short password 400
  ``M_WEAK_PASSWORD`` (``registration.password_min_length``), checked before the code is
  spent.
"""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden

from ...accounts.api._common import check_new_password, req_str
from .. import claim_codes, store

CLAIM_PATH = "/_parta/v1/claim"
MAX_PASSWORD_BYTES = 512


def register(router: Any, accounts: Any) -> None:
    async def post_claim(req: Any) -> tuple[int, dict]:
        guard = accounts.guard
        guard.attempt(req.client_ip)
        body = req.json()
        code = req_str(body, "code", max_bytes=claim_codes.MAX_INPUT)
        password = req_str(body, "new_password", max_bytes=MAX_PASSWORD_BYTES)
        check_new_password(accounts, password)
        guard.check_not_locked(req.client_ip)
        normalised = claim_codes.normalise(code)
        user_id = None
        if normalised is not None:
            user_id = await accounts.db.run(store.take_claim_code, normalised)
        if user_id is None:
            guard.failed(req.client_ip)
            raise Forbidden("Unknown or already used claim code")
        await accounts.change_password(user_id, password, keep_device_id=None, logout_devices=True)
        return 200, {"user_id": user_id}

    router.add("POST", CLAIM_PATH, post_claim, auth=False)
