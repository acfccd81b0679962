"""Unread notification counts when the node does not evaluate push rules at persist time
(``push.enabled: false``, or a sync service built without the push area): counted at
sync time from the events after the user's read position, under the server-default push
rules (client-server API "Push Notifications" > "Receiving notifications", "Marking
notifications as read", "Predefined Rules").

The rules are the push area's own (``node.push.defaults`` compiled by
``node.push.evaluator``), so both ways of counting agree; only per-user rules need the
push area's evaluation (``node/push/notify.py``, ``node/sync/push_counts.py``).  The
member count is not known here: the one-to-one rules notify exactly as
``.m.rule.message`` / ``.m.rule.encrypted`` do, so counts are the same.

Counting: events after the user's read-up-to position (the further of ``m.read`` and
``m.read.private``, unthreaded or ``main``); an event the user sends resets the count
("by sending an event").  Counts are cached per (user, room) and advanced incrementally.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

from node.push.evaluator import CompiledRule, EventContext, compile_ruleset, evaluate
from node.push.ruleset import client_ruleset, empty_document

NOTIFY_TYPES = frozenset({"m.room.message", "m.room.encrypted", "m.call.invite"})
# Types worth fetching when counting (under the default rules nothing else notifies).
COUNTED_TYPES = NOTIFY_TYPES | {"m.room.member", "m.room.tombstone"}
SCAN_LIMIT = 300  # events looked at per room and sync at most (counts then saturate)


@lru_cache(maxsize=10_000)
def _default_rules(user_id: str) -> tuple[CompiledRule, ...]:
    return compile_ruleset(client_ruleset(empty_document(), user_id))


class _Facts:
    __slots__ = ("member_count", "_may", "_sender")

    def __init__(self, sender: str, may: Callable[[str], bool]) -> None:
        self.member_count = 0  # unknown (see the module docstring)
        self._sender = sender
        self._may = may

    def display_name(self, user_id: str) -> str | None:
        return None  # no default rule looks at it

    def sender_may_notify(self, key: str) -> bool:
        return key == "room" and self._may(self._sender)


def push_actions(
    event_type: str,
    content: Mapping[str, Any],
    sender: str,
    state_key: str | None,
    user_id: str,
    sender_may_notify_room: Callable[[str], bool],
) -> tuple[bool, bool]:
    """(notify, highlight) for ``user_id`` under the server-default push rules."""
    if sender == user_id:
        return False, False
    event: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content if isinstance(content, Mapping) else {},
    }
    if state_key is not None:
        event["state_key"] = state_key
    ctx = EventContext(event, _Facts(sender, sender_may_notify_room))
    rule = evaluate(_default_rules(user_id), ctx, user_id)
    if rule is None:
        return False, False
    return rule.notify, rule.highlight


def count_unread(
    evs: Sequence[Any],
    user_id: str,
    sender_may_notify_room: Callable[[str], bool],
    start: tuple[int, int] = (0, 0),
) -> tuple[int, int]:
    """Add the notifications of ``evs`` (oldest first) to ``start``; own events reset."""
    notif, highlight = start
    for ev in evs:
        if ev.sender == user_id:
            notif = highlight = 0
            continue
        n, h = push_actions(
            ev.type, ev.content, ev.sender, ev.state_key, user_id, sender_may_notify_room
        )
        if n:
            notif += 1
        if h:
            highlight += 1
    return notif, highlight


class UnreadCache:
    """(user, room) -> (read position, counted up to, notification count, highlight count)."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._entries: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self.max_entries = max_entries

    def get(self, user_id: str, room_id: str, read_pos: int) -> tuple[int, int, int] | None:
        """(counted up to, notif, highlight) if cached for this read position."""
        entry = self._entries.get((user_id, room_id))
        if entry is None or entry[0] != read_pos:
            return None
        return entry[1], entry[2], entry[3]

    def put(
        self, user_id: str, room_id: str, read_pos: int, upto: int, notif: int, highlight: int
    ) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; counts are recomputed
        self._entries[(user_id, room_id)] = (read_pos, upto, notif, highlight)
