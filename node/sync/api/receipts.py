"""``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` (client-server API "Receipts",
``receipts.yaml``): ``m.read``, ``m.read.private`` and ``m.fully_read`` (the latter is the read
marker, stored as room account data); ``thread_id`` (``main`` or a thread root) is accepted."""

from __future__ import annotations

from typing import Any

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def receipt(req: Any, roomId: str, receiptType: str, eventId: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        await service.send_receipt(
            req.user_id,
            roomId,
            receiptType,
            eventId,
            body.get("thread_id") if "thread_id" in body else None,
        )
        return 200, {}

    router.add(
        "POST", V3 + "/rooms/{roomId}/receipt/{receiptType}/{eventId}", receipt, rate_limited=True
    )
