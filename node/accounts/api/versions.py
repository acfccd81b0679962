"""``GET /_matrix/client/versions`` (client-server "API Standards", versions.yaml)."""

from __future__ import annotations

from typing import Any

# The r0 releases too: every r0 operation is also served under /_matrix/client/r0
# (node/http/router.py), and older clients look for these names before they use it.
SUPPORTED_VERSIONS = [
    *("r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1"),
    *(f"v1.{n}" for n in range(1, 13)),
]


def register(router: Any, accounts: Any) -> None:
    async def get_versions(req: Any) -> tuple[int, dict]:
        return 200, {"versions": SUPPORTED_VERSIONS, "unstable_features": {}}

    router.add("GET", "/_matrix/client/versions", get_versions, auth=False)
