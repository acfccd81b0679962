"""Unread notification counts per (user, room), kept in memory and advanced as events are
evaluated (client-server API "Receiving notifications" / "Marking notifications as read",
https://spec.matrix.org/v1.16/client-server-api/#receiving-notifications).

A notification ``(stream, thread, highlight)`` is unread unless the user has read past it:

* an unthreaded receipt (``m.read`` or ``m.read.private``, the further of the two) reads
  everything up to its event;
* a threaded receipt (``main`` or a thread root) reads its thread up to its event;
* an event the user sends counts as a receipt in its thread ("by sending an event").

The first count of a (user, room) reads the user's receipts, their own recent events and
the newest ``MAX_ITEMS`` notifications after their unthreaded receipt (the counts saturate
there) in one database call; afterwards every new notification and own event updates the
entry in memory, before the notifier wakes ``/sync``, so an event's count arrives in the
same sync response as the event.  A new receipt drops the entry (read again next time).
Notifications evaluated but not yet committed are kept aside (``pending``) so a load that
races with their write still counts them, and changes during a load are replayed on it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select

from schema.events import events
from schema.push import push_notifications
from schema.sync import receipts

from .threads import MAIN, thread_of

MAX_ITEMS = 300  # notifications kept per (user, room): counts saturate beyond
OWN_EVENTS_SCANNED = 50  # own events read at load to find the thread marks
MAX_ENTRIES = 50_000  # (user, room) entries in memory (least recently used dropped)

Key = tuple[str, str]
Item = tuple[int, str, bool]  # (stream ordering, thread, highlight)


@dataclass
class Counts:
    notifications: int = 0
    highlights: int = 0
    threads: dict[str, tuple[int, int]] = field(default_factory=dict)  # thread root -> counts
    main: tuple[int, int] = (0, 0)

    def bump(self, thread: str, highlight: bool, sign: int) -> None:
        self.notifications += sign
        self.highlights += sign * highlight
        if thread == MAIN:
            self.main = (self.main[0] + sign, self.main[1] + sign * highlight)
            return
        n, h = self.threads.get(thread, (0, 0))
        n, h = n + sign, h + sign * highlight
        if n > 0:
            self.threads[thread] = (n, h)
        else:
            self.threads.pop(thread, None)


@dataclass
class RoomUnread:
    """One user's unread notifications in one room.  The counts are computed once and then
    kept up to date as notifications arrive (O(1) per notification, whatever the number
    unread); a new read position recomputes them and forgets what it made read."""

    base: int = 0  # unthreaded read position
    marks: dict[str, int] = field(default_factory=dict)  # thread -> read position
    items: list[Item] = field(default_factory=list)  # oldest first, after ``base``
    cached: Counts | None = None

    def add(self, item: Item) -> None:
        stream, thread, highlight = item
        if self.is_read(stream, thread) or any(i[0] == stream for i in self.items[-4:]):
            return
        self.items.append(item)
        if self.cached is not None:
            self.cached.bump(thread, highlight, 1)
        if len(self.items) > MAX_ITEMS:
            old = self.items.pop(0)
            if self.cached is not None and not self.is_read(old[0], old[1]):
                self.cached.bump(old[1], old[2], -1)

    def mark(self, thread: str, stream: int) -> None:
        if stream > self.marks.get(thread, 0):
            self.marks[thread] = stream
            self.items = [i for i in self.items if not self.is_read(i[0], i[1])]
            self.cached = None

    def is_read(self, stream: int, thread: str) -> bool:
        return stream <= self.base or stream <= self.marks.get(thread, 0)


def count(entry: RoomUnread) -> Counts:
    if entry.cached is None:
        out = Counts()
        for stream, thread, highlight in entry.items:
            if not entry.is_read(stream, thread):
                out.bump(thread, highlight, 1)
        entry.cached = out
    return entry.cached


def _load(conn: Any, user_id: str, room_id: str) -> RoomUnread:
    entry = RoomUnread()
    rc = receipts.c
    for thread, pos in conn.execute(
        select(rc.thread_id, func.max(rc.event_stream))
        .where(
            rc.user_id == user_id,
            rc.room_id == room_id,
            rc.receipt_type.in_(("m.read", "m.read.private")),
            rc.event_stream.is_not(None),
        )
        .group_by(rc.thread_id)
    ):
        if pos is None:
            continue
        if thread:
            entry.mark(thread, int(pos))
        else:
            entry.base = max(entry.base, int(pos))
    ec = events.c
    for stream, text in conn.execute(
        select(ec.stream_ordering, ec.json)
        .where(
            ec.room_id == room_id,
            ec.sender == user_id,
            ec.stream_ordering > entry.base,
            ec.rejected_reason.is_(None),
            ec.outlier.is_(False),
        )
        .order_by(ec.stream_ordering.desc())
        .limit(OWN_EVENTS_SCANNED)
    ):
        content = orjson.loads(text).get("content")
        entry.mark(thread_of(content), int(stream))
    nc = push_notifications.c
    rows = list(
        conn.execute(
            select(nc.stream_ordering, nc.thread_id, nc.highlight)
            .where(nc.user_id == user_id, nc.room_id == room_id, nc.stream_ordering > entry.base)
            .order_by(nc.stream_ordering.desc())
            .limit(MAX_ITEMS)
        )
    )
    entry.items = [(int(s), t, bool(h)) for s, t, h in reversed(rows)]
    return entry


class UnreadCounts:
    def __init__(self, db: Any, max_entries: int = MAX_ENTRIES) -> None:
        self.db = db
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, RoomUnread] = OrderedDict()
        # Notifications evaluated but not yet committed, per write (``pending_batch``).
        self._pending: dict[int, list[tuple[Key, Item]]] = {}
        self.pending_batch = 0
        self._loading: dict[Key, list[list[tuple[str, Any]]]] = {}  # logs of loads under way

    # --- what happened ---------------------------------------------------------------------
    def _apply(self, key: Key, op: str, arg: Any) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            if op == "item":
                entry.add(arg)
            else:
                entry.mark(*arg)
        for log in self._loading.get(key, ()):
            log.append((op, arg))

    def notified(self, user_id: str, room_id: str, item: Item) -> None:
        key = (user_id, room_id)
        batch = self._pending.get(self.pending_batch)
        if batch is None:
            batch = self._pending[self.pending_batch] = []
        batch.append((key, item))
        self._apply(key, "item", item)

    def notified_many(self, user_ids: list[str], room_id: str, item: Item) -> None:
        """``notified`` for every user of ``user_ids`` (the members the server-default
        rules notified for one event), with the per-call lookups done once."""
        batch = self._pending.get(self.pending_batch)
        if batch is None:
            batch = self._pending[self.pending_batch] = []
        batch.extend([((u, room_id), item) for u in user_ids])
        entries = self._entries
        loading = self._loading
        for user_id in user_ids:
            key = (user_id, room_id)
            entry = entries.get(key)
            if entry is not None:
                entry.add(item)
            if loading:
                for log in loading.get(key, ()):
                    log.append(("item", item))

    def next_batch(self) -> None:
        """The notifications so far go into one write; later ones into the next."""
        self.pending_batch += 1

    def written(self, batch: int) -> None:
        """A write's rows committed (or failed): a load reads them from the database."""
        self._pending.pop(batch, None)

    def sent(self, user_id: str, room_id: str, thread: str, stream: int) -> None:
        """The user sent an event: it reads its thread up to it."""
        self._apply((user_id, room_id), "mark", (thread, stream))

    def receipt(self, user_id: str, room_id: str) -> None:
        key = (user_id, room_id)
        self._entries.pop(key, None)
        for log in self._loading.get(key, ()):
            log.append(("drop", None))

    # --- reading ---------------------------------------------------------------------------
    async def entry(self, user_id: str, room_id: str) -> RoomUnread:
        key = (user_id, room_id)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        log: list[tuple[str, Any]] = []
        self._loading.setdefault(key, []).append(log)
        # Evaluated but not yet committed when the read starts: not in what it reads.
        snapshot = [item for b in self._pending.values() for k, item in b if k == key]
        try:
            entry = await self.db.read(_load, user_id, room_id)
        finally:
            logs = self._loading[key]
            logs.remove(log)
            if not logs:
                del self._loading[key]
        have = {item[0] for item in entry.items}
        extra = snapshot + [arg for op, arg in log if op == "item"]
        for item in extra:
            if item[0] not in have and item[0] > entry.base:
                entry.items.append(item)
                have.add(item[0])
        if extra:
            entry.items.sort()
            del entry.items[: max(0, len(entry.items) - MAX_ITEMS)]
        keep = True
        for op, arg in log:
            if op == "mark":
                entry.mark(*arg)
            elif op == "drop":
                keep = False
        if keep and key not in self._entries:
            self._entries[key] = entry
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return self._entries.get(key, entry)

    async def counts(self, user_id: str, room_id: str) -> Counts:
        return count(await self.entry(user_id, room_id))
