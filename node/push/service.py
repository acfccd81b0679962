"""``PushService``: the push area's parts (rules; notification counts and pushers are
added by their modules), as the sync area and the endpoints see them."""

from __future__ import annotations

from typing import Any

from .rule_store import PushRuleStore


class PushService:
    def __init__(self, *, db: Any, clock: Any, server_name: str) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.rules = PushRuleStore(db)

    def push_rules_content(self, user_id: str) -> dict:
        """The user's ``m.push_rules`` account data content."""
        return self.rules.ruleset(user_id)
