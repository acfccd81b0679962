"""Send-to-device messaging (client-server API "Send-to-Device messaging":
https://spec.matrix.org/v1.16/client-server-api/#send-to-device-messaging;
``to_device.yaml``): ``PUT /sendToDevice/{eventType}/{txnId}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.errors import InvalidParam

if TYPE_CHECKING:
    from ..service import E2eeService

CLIENT_V3 = "/_matrix/client/v3"
MAX_TXN_ID_BYTES = 255


def register(router: Any, e2ee: E2eeService) -> None:
    async def send(req: Any, eventType: str, txnId: str) -> tuple[int, dict]:
        if not txnId or len(txnId.encode("utf-8", "surrogatepass")) > MAX_TXN_ID_BYTES:
            raise InvalidParam("Invalid transaction ID")
        await e2ee.to_device.send(
            req.user_id, req.requester.device_id, eventType, txnId, req.json()
        )
        return 200, {}

    router.add("PUT", CLIENT_V3 + "/sendToDevice/{eventType}/{txnId}", send, rate_limited=True)
