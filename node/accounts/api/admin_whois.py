"""``GET /admin/whois/{userId}`` (client-server API "Server Administration",
``admin.yaml``): https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3adminwhoisuserid

The spec lets a server restrict it to the user themself and server admins; here those are
the only callers (anyone else: 403 ``M_FORBIDDEN``, checked before any look-up so the answer
reveals nothing about whether the user exists).  Server admins are the school roles that
run the school, as for locking and suspension (``moderation.is_server_admin_role``).
Devices are reported with the last address and time seen; the node keeps no user agents,
so connections carry ``ip`` and ``last_seen`` only.  A user of another server or an
unknown one of ours: 404 ``M_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden, NotFound

from ..moderation import is_server_admin_role
from ._common import CLIENT_V3


def whois_body(user_id: str, devices: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for device in devices:
        connection: dict[str, Any] = {}
        if "last_seen_ip" in device:
            connection["ip"] = device["last_seen_ip"]
        if "last_seen_ts" in device:
            connection["last_seen"] = device["last_seen_ts"]
        sessions = [{"connections": [connection] if connection else []}]
        out[device["device_id"]] = {"sessions": sessions}
    return {"user_id": user_id, "devices": out}


def register(router: Any, accounts: Any) -> None:
    async def whois(req: Any, userId: str) -> tuple[int, dict]:
        if userId != req.user_id and not is_server_admin_role(accounts.role_of(req.user_id)):
            raise Forbidden("Only server admins may look up other users")
        if not await accounts.user_exists(userId):
            raise NotFound("Unknown user")
        return 200, whois_body(userId, await accounts.list_devices(userId))

    router.add("GET", CLIENT_V3 + "/admin/whois/{userId}", whois)
