"""``PUT/GET /_matrix/client/v3/presence/{userId}/status`` (client-server API "Presence",
``presence.yaml``).

Rules: a user sets only their own presence (403 ``M_FORBIDDEN``); ``presence`` is
required and one of ``online``/``unavailable``/``offline`` (400); ``status_msg`` is a
string of at most ``MAX_STATUS_MSG_CHARS`` characters or null (400).  While presence is
off on this node a PUT is accepted and changes nothing, so clients that always set it
keep working.  GET answers 403 ``M_FORBIDDEN`` ("You are not allowed to see this user's
presence status") when the caller may not see it -- presence off, the user's role not
shared, or no room in common -- and the same 403 for users that do not exist, so the
answer says nothing about who exists.
"""

from __future__ import annotations

from typing import Any

from federation.errors import BadJSON, Forbidden, InvalidParam
from federation.identifiers import is_valid_user_id

from ...http.request import MissingParam
from ..presence import MAX_STATUS_MSG_CHARS, STATES, PresenceManager

V3 = "/_matrix/client/v3"


def parse_status(body: dict) -> tuple[str, Any]:
    """(presence, status_msg); ``status_msg`` is ``...`` when absent (unchanged)."""
    presence = body.get("presence")
    if presence is None:
        raise MissingParam("Missing 'presence'")
    if presence not in STATES:
        raise InvalidParam("'presence' must be online, unavailable or offline")
    if "status_msg" not in body:
        return presence, ...
    msg = body["status_msg"]
    if msg is not None:
        if not isinstance(msg, str):
            raise BadJSON("'status_msg' must be a string")
        if len(msg) > MAX_STATUS_MSG_CHARS or "\x00" in msg:
            raise InvalidParam(
                f"'status_msg' may be at most {MAX_STATUS_MSG_CHARS} characters, without NUL"
            )
    return presence, msg


def register(router: Any, manager: PresenceManager) -> None:
    async def put_status(req: Any, userId: str) -> tuple[int, dict]:
        if userId != req.user_id:
            raise Forbidden("You cannot set the presence of another user")
        presence, msg = parse_status(req.json())
        await manager.set_presence(req.user_id, presence, msg)
        return 200, {}

    async def get_status(req: Any, userId: str) -> tuple[int, dict]:
        if not is_valid_user_id(userId):
            raise InvalidParam("Invalid user ID")
        if not await manager.may_see(req.user_id, userId):
            raise Forbidden("You are not allowed to see this user's presence status")
        return 200, manager.content(userId)

    router.add("PUT", V3 + "/presence/{userId}/status", put_status, rate_limited=True)
    router.add("GET", V3 + "/presence/{userId}/status", get_status)
