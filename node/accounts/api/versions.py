"""``GET /_matrix/client/versions`` (client-server "API Standards", versions.yaml)."""

from __future__ import annotations

from typing import Any

SUPPORTED_VERSIONS = [f"v1.{n}" for n in range(1, 13)]


def register(router: Any, accounts: Any) -> None:
    async def get_versions(req: Any) -> tuple[int, dict]:
        return 200, {"versions": SUPPORTED_VERSIONS, "unstable_features": {}}

    router.add("GET", "/_matrix/client/versions", get_versions, auth=False)
