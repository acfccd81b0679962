"""``PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}`` (client-server API
"Redactions", ``redaction.yaml``)."""

from __future__ import annotations

from typing import Any

from .common import V3, device_of, optional_str


def register(router: Any, service: Any) -> None:
    async def redact(req: Any, roomId: str, eventId: str, txnId: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        content: dict = {"redacts": eventId}
        reason = optional_str(body, "reason")
        if reason is not None:
            content["reason"] = reason
        event_id = await service.send_event(
            req.user_id, roomId, "m.room.redaction", content, txn=(device_of(req), txnId)
        )
        return 200, {"event_id": event_id}

    router.add("PUT", V3 + "/rooms/{roomId}/redact/{eventId}/{txnId}", redact, rate_limited=True)
