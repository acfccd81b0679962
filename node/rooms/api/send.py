"""``PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}`` (client-server API
"Sending events to a room", ``room_send.yaml``; "Transaction identifiers": idempotent per
device and transaction ID; "Threading": no thread off an event with a relation)."""

from __future__ import annotations

from typing import Any

from ..relations import check_thread_start
from .common import V3, device_of


def register(router: Any, service: Any) -> None:
    async def send(req: Any, roomId: str, eventType: str, txnId: str) -> tuple[int, dict]:
        content = req.json()
        await check_thread_start(service, req.user_id, roomId, content)
        event_id = await service.send_event(
            req.user_id, roomId, eventType, content, txn=(device_of(req), txnId)
        )
        return 200, {"event_id": event_id}

    router.add("PUT", V3 + "/rooms/{roomId}/send/{eventType}/{txnId}", send, rate_limited=True)
