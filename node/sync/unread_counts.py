"""``unread_notifications`` of a joined room in ``/sync`` (client-server API "Receiving
notifications", https://spec.matrix.org/v1.16/client-server-api/#receiving-notifications).

With the push area wired (``push``), its per-user rules decide (``push_counts.py``).
Without it, the counts are taken at sync time under the default rules (``unread.py``):
from the events the timeline already fetched when they cover the gap since the last
count, else from one bounded query of the events that can notify.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from federation.auth.power_levels import get_power_levels_content, user_power_level
from node.rooms.event_meta import meta

from . import queries
from .params import SyncRun
from .push_counts import PushUnread
from .room_state import RoomStateReader, Timeline, stream_of
from .unread import COUNTED_TYPES, SCAN_LIMIT, UnreadCache, count_unread


class _Row:
    """An events row viewed as much like an ``Event`` as unread counting needs."""

    __slots__ = ("type", "sender", "state_key", "content", "stream")

    def __init__(self, row: Any) -> None:
        self.stream, self.type, self.sender, self.state_key = row[0], row[1], row[2], row[3]
        content = orjson.loads(row[4]).get("content") if not row[5] else {}
        self.content = content if isinstance(content, dict) else {}


def room_notifier_check(state: dict) -> Callable[[str], bool]:
    """``sender_notification_permission`` for the ``room`` key (default level 50)."""

    def check(sender: str) -> bool:
        create = state.get(("m.room.create", ""))
        if create is None:
            return False
        pl = get_power_levels_content(state)
        notifications = pl.get("notifications")
        level = notifications.get("room", 50) if isinstance(notifications, dict) else 50
        if not isinstance(level, int) or isinstance(level, bool):
            level = 50
        return user_power_level(sender, state, create.room_version) >= level

    return check


class UnreadCounts:
    def __init__(self, db: Any, notifier: Any, state: RoomStateReader, cache: UnreadCache) -> None:
        self.db = db
        self.notifier = notifier
        self.state = state
        self.cache = cache
        self.push: PushUnread | None = None  # counts from node/push, set by wiring

    async def add(
        self, run: SyncRun, room_id: str, entry: dict, tl: Timeline, current: dict | None
    ) -> bool:
        """Set ``unread_notifications``; True when the counts differ from the last answer."""
        if self.push is not None:  # the push area's per-user rules decide (node/push)
            threaded = run.filter.room.timeline.unread_thread_notifications
            return await self.push.add(run.user_id, room_id, entry, threaded)
        user_id = run.user_id
        upper = run.upper.events
        read_pos = run.read_pos.get(room_id, 0)
        before = self.cache.get(user_id, room_id, read_pos)
        if before is not None and before[0] >= upper:
            notif, highlight = before[1], before[2]
        else:
            start_pos, base = (before[0], (before[1], before[2])) if before else (read_pos, (0, 0))
            if tl.raw_covers_from is not None and tl.raw_covers_from <= start_pos:
                evs: list = [
                    ev
                    for ev in reversed(tl.raw)
                    if (stream_of(ev) or 0) > start_pos and meta(ev).redacted_by is None
                ]
            else:
                rows = await self.db.run(
                    queries.notifiable_events_query,
                    room_id,
                    user_id,
                    start_pos,
                    upper,
                    sorted(COUNTED_TYPES),
                    SCAN_LIMIT,
                )
                evs = [_Row(r) for r in rows if not r[5]]
            if evs:
                if current is None:
                    current = await self.state.current_state(room_id)
                notif, highlight = count_unread(evs, user_id, room_notifier_check(current), base)
            else:
                notif, highlight = base
            self.cache.put(user_id, room_id, read_pos, upper, notif, highlight)
        entry["unread_notifications"] = {"notification_count": notif, "highlight_count": highlight}
        if before is None:
            # Unknown before (first answer since start-up): report when events moved.
            return self.notifier.room_events.get(room_id, 0) > (
                run.since.events if run.since else 0
            )
        return (before[1], before[2]) != (notif, highlight)
