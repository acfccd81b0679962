"""Key management (client-server API "Key management API":
https://spec.matrix.org/v1.16/client-server-api/#key-management-api; ``keys.yaml``):
``POST /keys/upload``, ``POST /keys/query``, ``POST /keys/claim``, ``GET /keys/changes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.http.request import MissingParam
from node.stream_tokens import parse_sync_token

if TYPE_CHECKING:
    from ..service import E2eeService

CLIENT_V3 = "/_matrix/client/v3"


def register(router: Any, e2ee: E2eeService) -> None:
    async def upload(req: Any) -> tuple[int, dict]:
        return 200, await e2ee.keys.upload(req.user_id, req.requester.device_id, req.json())

    async def query(req: Any) -> tuple[int, dict]:
        return 200, await e2ee.keys.query(req.user_id, req.json())

    async def claim(req: Any) -> tuple[int, dict]:
        return 200, await e2ee.keys.claim(req.json())

    async def changes(req: Any) -> tuple[int, dict]:
        raw_from, raw_to = req.query("from"), req.query("to")
        if raw_from is None or raw_to is None:
            raise MissingParam("'from' and 'to' are required")
        since, upper = parse_sync_token(raw_from), parse_sync_token(raw_to)
        return 200, await e2ee.key_changes(req.user_id, since.device_lists, upper.device_lists)

    router.add("POST", CLIENT_V3 + "/keys/upload", upload)
    router.add("POST", CLIENT_V3 + "/keys/query", query)
    router.add("POST", CLIENT_V3 + "/keys/claim", claim, rate_limited=True)
    router.add("GET", CLIENT_V3 + "/keys/changes", changes)
