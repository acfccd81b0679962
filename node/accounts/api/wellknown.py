"""``GET /.well-known/matrix/client`` (client-server "Server Discovery", wellknown.yaml)."""

from __future__ import annotations

from typing import Any

from ._common import well_known


def register(router: Any, accounts: Any) -> None:
    async def get_wellknown(req: Any) -> tuple[int, dict]:
        return 200, well_known(accounts)

    router.add("GET", "/.well-known/matrix/client", get_wellknown, auth=False)
