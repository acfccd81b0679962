"""``PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}`` (client-server API
"Sending events to a room", ``room_send.yaml``; "Transaction identifiers": idempotent per
device and transaction ID; "Threading" and "Event annotations": what a new child event
may not be, ``relations.check_relation_send``)."""

from __future__ import annotations

from typing import Any

from ..relations import check_relation_send
from .common import V3, device_of


def register(router: Any, service: Any) -> None:
    async def send(req: Any, roomId: str, eventType: str, txnId: str) -> tuple[int, dict]:
        content = req.json()
        txn = (device_of(req), txnId)
        await check_relation_send(
            service, req.user_id, roomId, eventType, content, (txn[0] or "", txnId)
        )
        event_id = await service.send_event(req.user_id, roomId, eventType, content, txn=txn)
        return 200, {"event_id": event_id}

    router.add("PUT", V3 + "/rooms/{roomId}/send/{eventType}/{txnId}", send, rate_limited=True)
