"""Batched event persistence: many concurrent sends -> one database transaction.

Events are queued in creation order by the room service (already authorised and applied
to the in-memory room state).  While one batch is being written on the DB thread, new
events queue up; the next batch takes them all (up to ``max_batch``) and writes them in
ONE ``db.run`` transaction (``store.write_events``).  Stream orderings -- the node-local
total order that sync tokens and ``/messages`` pagination are built on -- are assigned
here, consecutively, right before a batch is written, so they are dense and ordered.

After a batch commits: the ``on_committed`` hooks run with every event (storage
bookkeeping, e.g. state groups), then the ``on_persisted`` hooks (caches, federation
fan-out) and the notifier (one call per room with the room's highest stream ordering)
with the *visible* events only -- events received over federation may be stored hidden:
outliers (``internal["outlier"]``, including soft-failed events) and rejected events
(``rejected_reason``) are never shown to clients; backfilled history
(``internal["backfilled"]``: stream orderings -1, -2, ... below everything else, so
``/messages`` finds it where it belongs) is not news for hooks or the notifier either.  Then the ``events persisted`` metric is
incremented, and each sender's Deferred fires.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from twisted.internet import defer

from federation.events.model import Event

from . import store, store_write

log = logging.getLogger("parta.rooms.persist")

MEMBER = "m.room.member"
MAX_HOLD_S = 0.05       # a hold never delays writing queued events longer than this


def is_hidden(ev: Event) -> bool:
    """Stored but not part of the room as clients see it: outliers (no known state;
    soft-failed events are stored as outliers too) and rejected events."""
    return ev.rejected_reason is not None or bool(ev.internal.get("outlier"))


_METRICS: list = []


def _count_persisted(n: int) -> None:
    """Increment ``node.metrics``' event counters when that module provides them."""
    if not _METRICS:
        try:
            from node import metrics  # noqa: PLC0415 - optional, written by the accounts area
        except ImportError:
            metrics = None
        _METRICS.append((getattr(metrics, "EVENTS_PERSISTED", None),
                         getattr(metrics, "EVENT_PERSIST_BATCHES", None)))
    events_counter, batches_counter = _METRICS[0]
    try:
        if events_counter is not None:
            events_counter.inc(n)
        if batches_counter is not None:
            batches_counter.inc()
    except Exception:  # noqa: BLE001 - metrics never break persistence
        log.debug("metrics counter failed", exc_info=True)


class _Extra:
    """A write that goes into the same database transaction as the events queued before it
    (``enqueue_extra``)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn = fn
        self.args = args


def _write_batch(conn: Any, evs: Sequence[Event], extras: Sequence[_Extra]) -> None:
    store_write.write_events(conn, evs)
    for extra in extras:
        extra.fn(conn, *extra.args)


class EventPersister:
    def __init__(self, db: Any, notifier: Any, *, max_batch: int = 1000,
                 clock: Any = None) -> None:
        self.db = db
        self.notifier = notifier
        self.max_batch = max_batch
        self.clock = clock
        self._queue: list[tuple[Event | _Extra, defer.Deferred]] = []
        self._writing = False
        self._started = False
        self._holds = 0
        self._hold_timer: Any = None
        self.max_persisted = 0          # highest committed stream ordering
        self._next_stream = 1
        self._next_backfill = -1         # backfilled history: -1, -2, ... (older: lower)
        self.on_committed: list[Callable[[Sequence[Event]], None]] = []
        self.on_persisted: list[Callable[[Sequence[Event]], None]] = []
        self.on_failed: list[Callable[[Sequence[Event]], None]] = []
        self.batches_written = 0

    def start_sync(self) -> None:
        """Read the stream ordering bounds at start-up (blocking; wiring only)."""
        self._set_bounds(self.db.run_sync(store.stream_ordering_bounds))

    async def start(self) -> None:
        if not self._started:
            self._set_bounds(await self.db.run(store.stream_ordering_bounds))

    def _set_bounds(self, bounds: tuple[int, int]) -> None:
        low, high = bounds
        self.max_persisted = high
        self._next_stream = high + 1
        self._next_backfill = min(low, 0) - 1
        self._started = True

    def enqueue(self, event: Event) -> defer.Deferred:
        """Queue an event; the Deferred fires with it once committed (stream ordering set)."""
        d: defer.Deferred = defer.Deferred()
        self._queue.append((event, d))
        self._kick()
        return d

    def enqueue_extra(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run ``fn(conn, *args)`` in the database transaction that writes the events queued
        so far (after them); the Deferred fires with None once that transaction committed,
        or fails with it.  E.g. an inbound federation transaction's stored response, so
        the events and the record that they were received commit together."""
        d: defer.Deferred = defer.Deferred()
        self._queue.append((_Extra(fn, args), d))
        self._kick()
        return d

    def hold(self) -> None:
        """Queue without writing until the matching ``release`` (nested holds count), so a
        burst of events (an inbound transaction) becomes one write instead of several.
        Writes start anyway ``MAX_HOLD_S`` after the first event queued under a hold."""
        self._holds += 1

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds == 0:
            self._cancel_hold_timer()
            self._kick()

    def flush(self) -> None:
        """Start writing what is queued now, holds or not (for a caller that is about to
        wait for its own events while a hold may be active)."""
        self._kick(force=True)

    def _cancel_hold_timer(self) -> None:
        if self._hold_timer is not None:
            if self._hold_timer.active():
                self._hold_timer.cancel()
            self._hold_timer = None

    def _hold_expired(self) -> None:
        self._hold_timer = None
        self._kick(force=True)

    def _kick(self, force: bool = False) -> None:
        if self._writing or not self._queue:
            return
        if self._holds and not force and self.clock is not None:
            if self._hold_timer is None:
                self._hold_timer = self.clock.call_later(MAX_HOLD_S, self._hold_expired)
            return
        self._writing = True
        defer.ensureDeferred(self._drain())

    async def _drain(self) -> None:
        try:
            if not self._started:
                await self.start()
            while self._queue:
                batch, n = [], 0
                for item in self._queue:
                    if isinstance(item[0], Event):
                        if n == self.max_batch:
                            break
                        n += 1
                    batch.append(item)
                del self._queue[:len(batch)]
                await self._write(batch)
        except Exception:  # noqa: BLE001 - never leave the queue stuck
            log.exception("event persister loop failed")
        finally:
            self._writing = False
            if self._queue:     # something arrived after the loop's last check
                self._kick()

    async def _write(self, items: list[tuple[Event | _Extra, defer.Deferred]]) -> None:
        batch = [(ev, d) for ev, d in items if isinstance(ev, Event)]
        extras = [(x, d) for x, d in items if isinstance(x, _Extra)]
        evs = [ev for ev, _ in batch]
        first = self._next_stream
        first_backfill = self._next_backfill
        n = 0
        for ev in evs:
            if ev.internal.get("backfilled"):
                # History older than anything in the room: below every stream ordering,
                # in the order queued (newest first), so /messages pages back through it.
                ev.internal["stream_ordering"] = self._next_backfill
                self._next_backfill -= 1
            else:
                ev.internal["stream_ordering"] = first + n
                n += 1
        self._next_stream = first + n
        try:
            if extras:
                await self.db.run(_write_batch, evs, [x for x, _ in extras])
            else:
                await self.db.run(store_write.write_events, evs)
        except Exception as exc:  # noqa: BLE001 - the senders get the failure
            log.exception("persisting %d events failed", len(evs))
            self._next_stream = first
            self._next_backfill = first_backfill
            for ev in evs:
                ev.internal.pop("stream_ordering", None)
            if evs:
                for hook in self.on_failed:
                    hook(evs)
            for _, d in batch + extras:
                d.errback(exc)
            return
        for _, d in extras:
            d.callback(None)
        if not evs:
            return
        self.max_persisted = first + n - 1
        self.batches_written += 1
        for ev in evs:
            ev.internal.pop("new_room", None)
            ev.internal.pop("extremities_after", None)
            ev.internal.pop("current_state_delta", None)
        for hook in self.on_committed:
            try:
                hook(evs)
            except Exception:  # noqa: BLE001
                log.exception("on_committed hook failed")
        visible = [ev for ev in evs if not is_hidden(ev) and not ev.internal.get("backfilled")]
        if visible:
            for hook in self.on_persisted:
                try:
                    hook(visible)
                except Exception:  # noqa: BLE001
                    log.exception("on_persisted hook failed")
            self._notify(visible)
        _count_persisted(len(evs))
        for ev, d in batch:
            d.callback(ev)

    def _notify(self, evs: Sequence[Event]) -> None:
        if self.notifier is None:
            return
        per_room: dict[str, tuple[int, set[str]]] = {}
        for ev in evs:
            stream, extra = per_room.get(ev.room_id, (0, set()))
            if ev.type == MEMBER and ev.is_state:
                extra.add(ev.state_key)
            per_room[ev.room_id] = (max(stream, ev.internal["stream_ordering"]), extra)
        for room_id, (stream, extra) in per_room.items():
            try:
                self.notifier.notify_room_event(room_id, stream, extra_user_ids=sorted(extra))
            except Exception:  # noqa: BLE001 - a broken waiter must not fail the send
                log.exception("notifier failed for %s", room_id)
