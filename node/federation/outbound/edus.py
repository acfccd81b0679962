"""EDUs this server sends for its own users.

Spec: server-server API "EDUs", "Typing Notifications" (``m.typing``: ``room_id``,
``user_id``, ``typing``) and "Receipts" (``m.receipt``: ``{room_id: {"m.read": {user_id:
{"event_ids": [...], "data": {"ts": ...}}}}}``; private receipts are never federated).

Each builder returns ``(edu_type, content, coalesce_key)``: a newer EDU with the same key
replaces an older one that is still queued (only the latest typing state or read receipt
of a user in a room matters).
"""

from __future__ import annotations

from typing import Any

TYPING = "m.typing"
RECEIPT = "m.receipt"
FEDERATED_RECEIPT_TYPES = ("m.read",)


def typing_edu(room_id: str, user_id: str, typing: bool) -> tuple[str, dict, str]:
    return (
        TYPING,
        {"room_id": room_id, "user_id": user_id, "typing": bool(typing)},
        f"typing|{room_id}|{user_id}",
    )


def receipt_edu(
    room_id: str,
    receipt_type: str,
    user_id: str,
    event_id: str,
    ts: int,
    thread_id: str | None = None,
) -> tuple[str, dict, str] | None:
    """The ``m.receipt`` EDU for one receipt; None for types that stay on this server."""
    if receipt_type not in FEDERATED_RECEIPT_TYPES:
        return None
    data: dict[str, Any] = {"ts": int(ts)}
    if thread_id:
        data["thread_id"] = thread_id
    content = {room_id: {receipt_type: {user_id: {"event_ids": [event_id], "data": data}}}}
    return RECEIPT, content, f"receipt|{room_id}|{receipt_type}|{user_id}|{thread_id or ''}"
