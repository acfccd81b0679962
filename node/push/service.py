"""``PushService``: the push area's parts (rules; notification counts and pushers are
added by their modules), as the sync area and the endpoints see them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .counts import UnreadCounts
from .notify import PushEvaluator
from .rule_store import PushRuleStore

if TYPE_CHECKING:
    from node.rooms.service import RoomService


class PushService:
    def __init__(self, *, db: Any, clock: Any, server_name: str) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.rules = PushRuleStore(db)
        self.counts = UnreadCounts(db)
        self.rooms: RoomService | None = None
        self.evaluator: PushEvaluator | None = None

    def attach_rooms(self, rooms: RoomService, *, evaluate: bool = True) -> None:
        """Hook evaluation onto the rooms area's persister (``evaluate=False``: the node
        runs without push evaluation, ``push.enabled: false``)."""
        self.rooms = rooms
        if evaluate:
            self.evaluator = PushEvaluator(
                rules=self.rules,
                counts=self.counts,
                rooms=rooms,
                server_name=self.server_name,
                clock=self.clock,
            )
            self.evaluator.attach(rooms.persister)

    def push_rules_content(self, user_id: str) -> dict:
        """The user's ``m.push_rules`` account data content."""
        return self.rules.ruleset(user_id)
