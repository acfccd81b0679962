"""``GET /_matrix/client/v3/capabilities`` ("Capabilities negotiation", capabilities.yaml)."""

from __future__ import annotations

from typing import Any

from federation.room_versions import KNOWN_ROOM_VERSIONS

from ._common import CLIENT_V3
from .threepid_capabilities import threepid_capabilities


def capabilities(accounts: Any) -> dict:
    return {
        "m.change_password": {"enabled": True},
        "m.room_versions": {
            "default": accounts.config.default_room_version,
            "available": {v: "stable" for v in sorted(KNOWN_ROOM_VERSIONS, key=int)},
        },
        "m.set_displayname": {"enabled": True},
        "m.set_avatar_url": {"enabled": True},
        "m.profile_fields": {"enabled": True},
        "m.3pid_changes": {"enabled": False},
        "m.get_login_token": {"enabled": False},
    }


def register(router: Any, accounts: Any) -> None:
    async def get_capabilities(req: Any) -> tuple[int, dict]:
        caps = capabilities(accounts)
        caps.update(await threepid_capabilities(accounts, req.user_id))
        return 200, {"capabilities": caps}

    router.add("GET", CLIENT_V3 + "/capabilities", get_capabilities)
