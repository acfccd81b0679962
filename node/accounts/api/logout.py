"""``POST /logout`` and ``POST /logout/all`` (client-server "Logout", logout.yaml).

``/logout`` invalidates the token and deletes its device; ``/logout/all`` does so for every
token and device of the user.
"""

from __future__ import annotations

from typing import Any

from ._common import CLIENT_V3


def register(router: Any, accounts: Any) -> None:
    async def logout(req: Any) -> tuple[int, dict]:
        await accounts.logout(req.requester)
        return 200, {}

    async def logout_all(req: Any) -> tuple[int, dict]:
        await accounts.logout_all(req.user_id)
        return 200, {}

    router.add("POST", CLIENT_V3 + "/logout", logout)
    router.add("POST", CLIENT_V3 + "/logout/all", logout_all)
