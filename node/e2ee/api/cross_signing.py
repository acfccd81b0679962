"""Cross-signing (client-server API "Cross-signing":
https://spec.matrix.org/v1.16/client-server-api/#cross-signing; ``cross_signing.yaml``):
``POST /keys/device_signing/upload`` (with User-Interactive Authentication, password
stage, when it replaces keys) and ``POST /keys/signatures/upload``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.accounts.api._stages import password_stage
from node.accounts.uia import PASSWORD

if TYPE_CHECKING:
    from ..service import E2eeService

CLIENT_V3 = "/_matrix/client/v3"


def register(router: Any, e2ee: E2eeService) -> None:
    accounts = e2ee.accounts
    handlers = {PASSWORD: password_stage(accounts)} if accounts is not None else {}

    async def upload_keys(req: Any) -> tuple[int, dict]:
        body = req.json()
        session = None
        if await e2ee.cross_signing.needs_auth(req.user_id, body):
            session = await accounts.uia.authenticate(
                "device_signing_upload",
                body.get("auth"),
                [[PASSWORD]],
                handlers,
                user_id=req.user_id,
                client_ip=req.client_ip,
            )
        out = await e2ee.cross_signing.upload(req.user_id, body)
        if session is not None:
            accounts.uia.finish(session)
        return 200, out

    async def upload_signatures(req: Any) -> tuple[int, dict]:
        return 200, await e2ee.cross_signing.upload_signatures(req.user_id, req.json())

    router.add("POST", CLIENT_V3 + "/keys/device_signing/upload", upload_keys, rate_limited=True)
    router.add("POST", CLIENT_V3 + "/keys/signatures/upload", upload_signatures, rate_limited=True)
