"""``GET/PUT /_matrix/client/v1/admin/suspend/{userId}`` and ``.../admin/lock/{userId}``
(client-server "Server administration", admin.yaml; "Account moderation").

Rules, in the order the spec asks for them:
1. The caller must be a server admin (``moderation.SERVER_ADMIN_ROLES``), checked before any
   look-up of the target so nobody else learns which accounts exist: 403 ``M_FORBIDDEN``.
2. The target must be a user ID of this server: 400 ``M_INVALID_PARAM``.
3. The target must exist and not be deactivated: 404 ``M_NOT_FOUND``.
4. ``PUT``: an admin may not restrict their own account or another admin's: 403
   ``M_FORBIDDEN``; the body's flag (``suspended``/``locked``) must be a boolean.
The answer is the flag as it now is.  What a lock or suspension does: ``moderation.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import BadJSON, Forbidden, InvalidParam, NotFound
from federation.identifiers import is_valid_user_id

from ...http.request import MissingParam
from .. import store
from ..moderation import is_server_admin_role
from ._common import CLIENT_V1

log = logging.getLogger("parta.accounts")


async def require_admin(accounts: Any, user_id: str) -> None:
    """Rule 1: 403 unless ``user_id`` is a server admin."""
    if not is_server_admin_role(await accounts.get_role(user_id)):
        raise Forbidden("Requesting user is not a server administrator.")


async def _target(accounts: Any, user_id: str) -> dict:
    """Rules 2-3: the target's user row."""
    if not is_valid_user_id(user_id) or not user_id.endswith(":" + accounts.server_name):
        raise InvalidParam("User does not belong to the local server.")
    row = await accounts.db.run(store.get_user, user_id)
    if row is None or row["deactivated"]:
        raise NotFound("User not found.")
    return row


def register(router: Any, accounts: Any) -> None:
    moderation = accounts.moderation

    def handlers(flag: str) -> tuple[Any, Any]:
        def current(user_id: str) -> bool:
            if flag == "locked":
                return moderation.is_locked(user_id)
            return moderation.is_suspended(user_id)

        async def get_flag(req: Any, userId: str) -> tuple[int, dict]:
            await require_admin(accounts, req.user_id)
            await _target(accounts, userId)
            return 200, {flag: current(userId)}

        async def put_flag(req: Any, userId: str) -> tuple[int, dict]:
            await require_admin(accounts, req.user_id)
            body = req.json()
            if not isinstance(body, dict) or flag not in body:
                raise MissingParam(f"Missing '{flag}'")
            value = body[flag]
            if not isinstance(value, bool):
                raise BadJSON(f"'{flag}' must be a boolean")
            row = await _target(accounts, userId)
            if userId == req.user_id:  # rule 4
                raise Forbidden("You cannot restrict your own account.")
            if is_server_admin_role(row["role"]):
                raise Forbidden("The target user is a server administrator.")
            await moderation.set_flag(userId, by=req.user_id, **{flag: value})
            log.info("event=account_%s user_id=%s value=%s by=%s", flag, userId, value, req.user_id)
            return 200, {flag: current(userId)}

        return get_flag, put_flag

    for path, flag in (
        ("/admin/suspend/{userId}", "suspended"),
        ("/admin/lock/{userId}", "locked"),
    ):
        get_flag, put_flag = handlers(flag)
        router.add("GET", CLIENT_V1 + path, get_flag)
        router.add("PUT", CLIENT_V1 + path, put_flag)
