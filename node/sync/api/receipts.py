"""``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` (client-server API "Receipts",
``receipts.yaml``): ``m.read``, ``m.read.private`` and ``m.fully_read`` (the latter is the read
marker, stored as room account data); ``thread_id`` (``main`` or a thread root) is accepted
when the event is in that thread (``receipts.check_thread``), 400 otherwise."""

from __future__ import annotations

from typing import Any

from ..receipts import check_thread

V3 = "/_matrix/client/v3"


def register(router: Any, service: Any) -> None:
    async def receipt(req: Any, roomId: str, receiptType: str, eventId: str) -> tuple[int, dict]:
        body = req.json(allow_empty=True)
        thread_id = body.get("thread_id") if "thread_id" in body else None
        if isinstance(thread_id, str) and thread_id and receiptType in ("m.read", "m.read.private"):
            await service.require_joined(req.user_id, roomId)  # members learn threads only
            await check_thread(service.db, roomId, eventId, thread_id)
        await service.send_receipt(req.user_id, roomId, receiptType, eventId, thread_id)
        return 200, {}

    router.add(
        "POST", V3 + "/rooms/{roomId}/receipt/{receiptType}/{eventId}", receipt, rate_limited=True
    )
