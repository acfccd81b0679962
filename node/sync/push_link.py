"""What the sync area takes from the push area (``node/push``), attached at wiring.

- ``m.push_rules``: every initial sync carries the user's current ruleset (the handler
  asks ``PushService.push_rules_content``), and each change is written as the user's
  global account data, so incremental syncs deliver it like any other account data
  (client-server API "Push Rules: Events",
  https://spec.matrix.org/v1.16/client-server-api/#push-rules-events).
"""

from __future__ import annotations

from typing import Any

from node.push.service import PushService

from .service import SyncService


def attach_push(sync: SyncService, push: PushService) -> None:
    sync.handler.push = push

    def rules_changed(user_id: str, content: dict) -> Any:
        return sync.account_data.set(user_id, None, "m.push_rules", content)

    push.rules.listeners.append(rules_changed)
