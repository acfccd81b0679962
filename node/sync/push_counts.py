"""``unread_notifications`` / ``unread_thread_notifications`` in ``/sync`` from the push
area's counts (client-server API "Receiving notifications",
https://spec.matrix.org/v1.16/client-server-api/#receiving-notifications, and
``GET /sync``'s ``unread_thread_notifications``).

Without ``unread_thread_notifications: true`` in the timeline filter, the counts cover
every thread; with it, ``unread_notifications`` is the main timeline's and each thread
with unread notifications gets its own entry keyed by its root.  The last answer per
(user, room, mode) is remembered so an incremental sync reports a room whose counts
changed even when nothing else in it did (e.g. after a read receipt from another device).
"""

from __future__ import annotations

from collections import OrderedDict

from node.push.service import PushService

MAX_REMEMBERED = 200_000


def _counts(n: int, h: int) -> dict:
    return {"notification_count": n, "highlight_count": h}


class PushUnread:
    def __init__(self, push: PushService) -> None:
        self.push = push
        self._last: OrderedDict[tuple[str, str, bool], tuple] = OrderedDict()

    async def add(self, user_id: str, room_id: str, entry: dict, threaded: bool) -> bool:
        """Set the counts on a joined room's ``entry``; True when they changed since the
        last answer for this user and room (or, unknown, when they are not zero)."""
        c = await self.push.counts.counts(user_id, room_id)
        if threaded:
            entry["unread_notifications"] = _counts(*c.main)
            if c.threads:
                entry["unread_thread_notifications"] = {
                    root: _counts(n, h) for root, (n, h) in c.threads.items()
                }
            now: tuple = (c.main, tuple(sorted(c.threads.items())))
            zero: tuple = ((0, 0), ())
        else:
            entry["unread_notifications"] = _counts(c.notifications, c.highlights)
            now, zero = (c.notifications, c.highlights), (0, 0)
        key = (user_id, room_id, threaded)
        before = self._last.get(key)
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > MAX_REMEMBERED:
            self._last.popitem(last=False)
        return now != (before if before is not None else zero)
