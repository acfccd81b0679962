"""``PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}`` (client-server API
"Sending events to a room", ``room_send.yaml``; "Transaction identifiers": idempotent per
device and transaction ID)."""

from __future__ import annotations

from typing import Any

from .common import V3, device_of


def register(router: Any, service: Any) -> None:
    async def send(req: Any, roomId: str, eventType: str, txnId: str) -> tuple[int, dict]:
        event_id = await service.send_event(
            req.user_id, roomId, eventType, req.json(), txn=(device_of(req), txnId)
        )
        return 200, {"event_id": event_id}

    router.add("PUT", V3 + "/rooms/{roomId}/send/{eventType}/{txnId}", send, rate_limited=True)
