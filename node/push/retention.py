"""How long notification rows are kept: ``GET /notifications`` lists what notified a user
"recently"; without a limit the table grows by one row per member for every message
forever.  Every ``SWEEP_S`` the rows older than the configured age are deleted, oldest
first and at most ``CHUNK`` at a time (row IDs grow with time, so the oldest rows are
found through the primary key without scanning the table).  Unread counts older than the
cut-off disappear with their rows.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select
from twisted.internet import defer

from schema.push import push_notifications

log = logging.getLogger("parta.push")

SWEEP_S = 3600.0
CHUNK = 10_000


def _sweep(conn: Any, cutoff_ts: int) -> int:
    c = push_notifications.c
    rows = list(conn.execute(select(c.id, c.ts).order_by(c.id).limit(CHUNK)))
    last = None
    for row_id, ts in rows:
        if ts >= cutoff_ts:
            break
        last = row_id
    if last is None:
        return 0
    return int(conn.execute(delete(push_notifications).where(c.id <= last)).rowcount or 0)


class NotificationRetention:
    def __init__(self, db: Any, clock: Any, keep_days: int) -> None:
        self.db = db
        self.clock = clock
        self.keep_ms = keep_days * 86_400_000

    def start(self) -> None:
        self.clock.call_later(60.0, self._run)

    def _run(self) -> None:
        defer.ensureDeferred(self.sweep()).addBoth(
            lambda _: self.clock.call_later(SWEEP_S, self._run)
        )

    async def sweep(self) -> int:
        """Delete old rows (a chunk at a time, until none is left); how many went."""
        total = 0
        try:
            while True:
                n = await self.db.run(_sweep, self.clock.time_ms() - self.keep_ms)
                total += n
                if n < CHUNK:
                    break
        except Exception:  # the next sweep tries again
            log.exception("notification retention sweep failed")
        if total:
            log.info("event=push_notifications_pruned rows=%d", total)
        return total
