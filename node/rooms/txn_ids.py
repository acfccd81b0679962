"""Idempotent sends: client-server API "Transaction identifiers"
(https://spec.matrix.org/v1.16/client-server-api/#transaction-identifiers).

A request repeated with the same access token (here: user and device), transaction ID and
HTTP path -- the room is part of the path, so of the key -- answers with the event ID of the
first one instead of sending again.  The IDs are remembered in memory, preloaded from the
database (``event_txn_ids``, written with the event) on first use, so a send does no
database read; a repeat that arrives while the first is still in flight shares its result.
Memory is bounded in time and count (``RoomService`` passes the bounds).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Awaitable, Callable

from sqlalchemy import select
from twisted.internet import defer

from schema.events import event_txn_ids

TxnKey = tuple[str, str, str, str]  # (user ID, device ID or "", transaction ID, room ID)


class TxnIds:
    def __init__(self, db: Any, clock: Any, *, keep_ms: int, max_entries: int) -> None:
        self.db = db
        self.clock = clock
        self.keep_ms = keep_ms
        self.max_entries = max_entries
        self._txns: OrderedDict[TxnKey, tuple[str, int]] = OrderedDict()
        self._loaded = False
        self._waiters: dict[TxnKey, list[defer.Deferred]] = {}

    def __len__(self) -> int:
        return len(self._txns)

    async def once(self, key: TxnKey, send: Callable[[], Awaitable[str]]) -> str:
        """The event ID ``key`` was answered with, or ``send()``'s, remembered for ``key``."""
        found = await self._lookup(key)
        if found is not None:
            return found
        waiters = self._waiters.get(key)
        if waiters is not None:  # the same transaction is in flight: share its result
            d: defer.Deferred = defer.Deferred()
            waiters.append(d)
            return await d
        self._waiters[key] = []
        try:
            event_id = await send()
        except Exception as exc:
            for d in self._waiters.pop(key, []):
                d.errback(exc)
            raise
        self._remember(key, event_id)
        for d in self._waiters.pop(key, []):
            d.callback(event_id)
        return event_id

    async def _lookup(self, key: TxnKey) -> str | None:
        if not self._loaded:
            since = self.clock.time_ms() - self.keep_ms
            rows = await self.db.run(_recent_txns, since)
            if not self._loaded:
                for k, eid, ts in rows:
                    self._txns.setdefault(k, (eid, ts))
                self._loaded = True
        hit = self._txns.get(key)
        return hit[0] if hit is not None else None

    def _remember(self, key: TxnKey, event_id: str) -> None:
        now = self.clock.time_ms()
        self._txns[key] = (event_id, now)
        while self._txns:
            _, (_, ts) = next(iter(self._txns.items()))
            if ts >= now - self.keep_ms and len(self._txns) <= self.max_entries:
                break
            self._txns.popitem(last=False)


def _recent_txns(conn: Any, since: int) -> list:
    t = event_txn_ids
    return [
        ((r.user_id, r.device_id, r.txn_id, r.room_id), r.event_id, r.inserted_ts)
        for r in conn.execute(
            select(t).where(t.c.inserted_ts >= since).order_by(t.c.inserted_ts.asc())
        )
    ]
