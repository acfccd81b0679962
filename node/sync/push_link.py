"""What the sync area takes from the push area (``node/push``), attached at wiring.

- ``m.push_rules``: every initial sync carries the user's current ruleset (the handler
  asks ``PushService.push_rules_content``), and each change is written as the user's
  global account data, so incremental syncs deliver it like any other account data
  (client-server API "Push Rules: Events",
  https://spec.matrix.org/v1.16/client-server-api/#push-rules-events);
  ``GET /user/{userId}/account_data/m.push_rules`` reads the current ruleset directly.
- Unread counts: when the node evaluates push rules, ``/sync`` takes its counts from the
  push area (``push_counts.PushUnread``); every stored read receipt makes the push area
  read that user's position in that room again.
"""

from __future__ import annotations

from typing import Any

from node.push.service import PushService

from .push_counts import PushUnread
from .service import SyncService


def attach_push(sync: SyncService, push: PushService) -> None:
    sync.handler.push = push

    def rules_changed(user_id: str, content: dict) -> Any:
        return sync.account_data.set(user_id, None, "m.push_rules", content)

    push.rules.listeners.append(rules_changed)
    sync.account_data.readers["m.push_rules"] = push.push_rules_content
    if push.evaluator is None:
        return  # push evaluation is off: the counts stay sync's own (node/sync/unread.py)
    sync.handler.push_unread = PushUnread(push)

    def receipt_stored(
        room_id: str,
        receipt_type: str,
        user_id: str,
        event_id: str,
        ts: int,
        thread_id: str | None,
    ) -> None:
        push.counts.receipt(user_id, room_id)

    sync.receipts.listeners.append(receipt_stored)
