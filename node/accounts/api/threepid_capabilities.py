"""The capabilities this area's contact, login-token and moderation endpoints depend on
("Capabilities negotiation"): ``m.3pid_changes`` (on while the node sends e-mail),
``m.get_login_token`` (on: ``POST /login/get_token``) and, for server admins only,
``m.account_moderation`` (the spec: omitted when both ``suspend`` and ``lock`` would be
false).
"""

from __future__ import annotations

from typing import Any

from ..moderation import is_server_admin_role


async def threepid_capabilities(accounts: Any, user_id: str) -> dict[str, Any]:
    sessions = accounts.threepid_sessions
    caps: dict[str, Any] = {
        "m.3pid_changes": {"enabled": sessions is not None and sessions.enabled},
        "m.get_login_token": {"enabled": accounts.login_tokens is not None},
    }
    if accounts.moderation is not None and is_server_admin_role(await accounts.get_role(user_id)):
        caps["m.account_moderation"] = {"suspend": True, "lock": True}
    return caps
