"""``PushService``: the push area's parts -- rules, evaluation, counts, pushers and
delivery -- as the sync area and the endpoints see them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .counts import UnreadCounts
from .delivery import Gateway, PushDelivery
from .notify import PushEvaluator
from .pushers import PusherStore
from .retention import NotificationRetention
from .rule_store import PushRuleStore

if TYPE_CHECKING:
    from node.rooms.service import RoomService


class PushService:
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        server_name: str,
        max_pushers: int = 10,
        notifications_kept_days: int = 30,
    ) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.rules = PushRuleStore(db)
        self.counts = UnreadCounts(db)
        self.pushers = PusherStore(db, clock, max_pushers)
        self.delivery: PushDelivery | None = None
        self.retention = NotificationRetention(db, clock, notifications_kept_days)
        self.rooms: RoomService | None = None
        self.evaluator: PushEvaluator | None = None

    def attach_rooms(
        self, rooms: RoomService, *, evaluate: bool = True, gateway: Gateway | None = None
    ) -> None:
        """Hook evaluation onto the rooms area's persister (``evaluate=False``: the node
        runs without push evaluation, ``push.enabled: false``) and, with a ``gateway``
        client, deliver notifications to the users' pushers."""
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
            if gateway is not None:
                self.delivery = PushDelivery(
                    db=self.db,
                    clock=self.clock,
                    pushers=self.pushers,
                    counts=self.counts,
                    persister=rooms.persister,
                    gateway=gateway,
                )
                self.evaluator.listeners.append(self.delivery.on_notifications)
                self.evaluator.wants_details = lambda user_id: bool(self.pushers.for_user(user_id))

    def start(self) -> None:
        """Send what was queued before a restart; prune old notifications from now on."""
        if self.delivery is not None:
            self.delivery.kick()
        if self.evaluator is not None:
            self.retention.start()

    def stop(self) -> Any:
        """At shutdown: write the notifications evaluated in the last moment (a Deferred
        the reactor waits for, or None)."""
        return self.evaluator.flush() if self.evaluator is not None else None

    def push_rules_content(self, user_id: str) -> dict:
        """The user's ``m.push_rules`` account data content."""
        return self.rules.ruleset(user_id)
