"""Batched event persistence: many concurrent sends -> one database transaction.

Events are queued in creation order by the room service (already authorised and applied
to the in-memory room state).  While one batch is being written on the DB thread, new
events queue up; the next batch takes them all (up to ``max_batch``) and writes them in
ONE ``db.run`` transaction (``store.write_events``).  Stream orderings -- the node-local
total order that sync tokens and ``/messages`` pagination are built on -- are assigned
here, consecutively, right before a batch is written, so they are dense and ordered.

After a batch commits: the ``on_committed`` hooks run with every event (storage
bookkeeping, e.g. state groups), then the ``on_persisted`` hooks (caches, federation
fan-out) and the notifier (one call per room with the room's highest stream ordering),
with the *visible* events only -- events received over federation may be stored hidden:
outliers (``internal["outlier"]``, including soft-failed events) and rejected events
(``rejected_reason``) are never shown to clients; backfilled history
(``internal["backfilled"]``: stream orderings -1, -2, ... below everything else, so
``/messages`` finds it where it belongs) is not news for hooks or the notifier either.  Then
the ``events persisted`` metric is incremented, each sender's Deferred fires, and only then
is the notifier called: a sender's answer goes out before the syncs that echo its event.

One event must never fail other users' sends.  Events that cannot become a row at all
(``store_write.check_storable``: JSON that does not encode, NUL or oversized strings) are
refused before they join a batch, with a 400 for their sender only; the room service
checks before it applies an event to the room in memory, so a refused event leaves no
trace.  A write the database still refuses is split in two and each half written on its
own, again and again, until the refused event is alone: every other event is stored (in
the order queued, stream orderings dense and ascending) and answered, only the refused
one's sender gets the error.  An event built on top of one that failed (it names it in
``prev_events`` or in its room's new forward extremities) is not written either: it would
leave a hole in the room's history; its sender is asked to send again.  The failures are
reported (``on_failed``, which makes the room service reload the room from the database)
after the write's storable events are committed, so the reload sees all of them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from twisted.internet import defer

from federation.errors import MatrixError
from federation.events.model import Event

from .. import metrics
from . import store, store_write
from .event_meta import committed_stream, meta

log = logging.getLogger("parta.rooms.persist")

MEMBER = "m.room.member"
MAX_HOLD_S = 0.05  # a hold never delays writing queued events longer than this
FAILED_KEEP = 10_000  # IDs of events that failed to store, remembered for dependants


class BuiltOnUnstored(MatrixError):
    """The event builds on an event that could not be stored (a server-side failure the
    sender did not cause): sending it again builds it on the stored history."""

    def __init__(self) -> None:
        super().__init__(
            "An earlier event this one builds on could not be stored; please send it again",
            errcode="M_UNKNOWN",
            http_status=500,
        )


def is_hidden(ev: Event) -> bool:
    """Stored but not part of the room as clients see it: outliers (no known state;
    soft-failed events are stored as outliers too) and rejected events."""
    return ev.rejected_reason is not None or meta(ev).outlier


def _count_persisted(n: int) -> None:
    """Increment the event counters of ``node.metrics`` (``/_parta/metrics``)."""
    try:
        metrics.EVENTS_PERSISTED.inc(n)
        metrics.EVENT_PERSIST_BATCHES.inc()
    except Exception:  # metrics never break persistence
        log.debug("metrics counter failed", exc_info=True)


class _Extra:
    """A write that goes into the same database transaction as the events queued before it
    (``enqueue_extra``)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn = fn
        self.args = args


def _write_batch(
    conn: Any,
    evs: Sequence[Event],
    extras: Sequence[_Extra],
    writers: Sequence[Callable[[Any, Sequence[Event]], None]] = (),
) -> None:
    store_write.write_events(conn, evs)
    for writer in writers:
        writer(conn, evs)
    for extra in extras:
        extra.fn(conn, *extra.args)


class EventPersister:
    def __init__(self, db: Any, notifier: Any, *, max_batch: int = 1000, clock: Any = None) -> None:
        self.db = db
        self.notifier = notifier
        self.max_batch = max_batch
        self.clock = clock
        self._queue: list[tuple[Event | _Extra, defer.Deferred]] = []
        self._writing = False
        self._started = False
        self._holds = 0
        self._hold_timer: Any = None
        self.max_persisted = 0  # highest committed stream ordering
        self._next_stream = 1
        self._next_backfill = -1  # backfilled history: -1, -2, ... (older: lower)
        # Rows derived from the events (e.g. the search index) that must commit with them:
        # ``writer(conn, events)`` runs inside each batch's transaction, after the event
        # rows.  A writer that raises fails the batch like a refused event row would.
        self.in_transaction: list[Callable[[Any, Sequence[Event]], None]] = []
        self.on_committed: list[Callable[[Sequence[Event]], None]] = []
        self.on_persisted: list[Callable[[Sequence[Event]], None]] = []
        self.on_failed: list[Callable[[Sequence[Event]], None]] = []
        self.batches_written = 0
        self._failed_ids: dict[str, None] = {}  # insertion-ordered, FAILED_KEEP at most

    @staticmethod
    def check(event: Event) -> None:
        """Raise ``store_write.Unstorable`` (400 M_BAD_JSON) unless the event can be
        written; call before the event changes the room in memory."""
        store_write.check_storable(event)

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
                del self._queue[: len(batch)]
                await self._write(batch)
        except Exception:  # never leave the queue stuck
            log.exception("event persister loop failed")
        finally:
            self._writing = False
            if self._queue:  # something arrived after the loop's last check
                self._kick()

    async def _write(self, items: list[tuple[Event | _Extra, defer.Deferred]]) -> None:
        """Write ``items`` (in the order queued), splitting a refused write until the
        refused events are alone; then report what failed."""
        failed: list[tuple[Event | _Extra, defer.Deferred, BaseException]] = []
        try:
            await self._write_part(items, failed, whole=True)
        finally:
            if failed:
                self._report_failed(failed)

    def _screen(
        self, items: list[tuple[Event | _Extra, defer.Deferred]], failed: list
    ) -> list[tuple[Event | _Extra, defer.Deferred]]:
        """``items`` without the events that cannot be written: unstorable ones (when the
        caller did not check them) and those built on an event that failed to store.
        O(1) per event when nothing has failed and the events were checked."""
        keep = []
        for item in items:
            ev = item[0]
            if isinstance(ev, Event):
                exc: BaseException | None = None
                if self._failed_ids:
                    # Queued again (e.g. a retried transaction): judged afresh.
                    self._failed_ids.pop(ev.event_id, None)
                    if self._builds_on_failed(ev):
                        exc = BuiltOnUnstored()
                if exc is None:
                    try:
                        m = meta(ev)
                        if m.row_json is None:
                            store_write.check_storable(ev)
                        elif m.new_room is not None:
                            store_write.check_new_room(m.new_room)
                    except MatrixError as err:
                        exc = err
                if exc is not None:
                    self._mark_failed(ev)
                    failed.append((ev, item[1], exc))
                    continue
            keep.append(item)
        return keep

    def _builds_on_failed(self, ev: Event) -> bool:
        """Was ``ev`` built on the room in memory while it held an event that then failed
        to store?  Then it names that event (or another such event) as a prev event or
        keeps it among the room's forward extremities.  Hidden and backfilled events are
        not built on the room in memory (and outliers may lack prev events anyway)."""
        if is_hidden(ev) or meta(ev).backfilled:
            return False
        bad = self._failed_ids
        return any(p in bad for p in ev.prev_event_ids) or any(
            e in bad for e in meta(ev).extremities_after or ()
        )

    def _mark_failed(self, ev: Event) -> None:
        self._failed_ids[ev.event_id] = None
        if len(self._failed_ids) > FAILED_KEEP:
            del self._failed_ids[next(iter(self._failed_ids))]

    async def _write_part(
        self,
        items: list[tuple[Event | _Extra, defer.Deferred]],
        failed: list,
        *,
        whole: bool = False,
    ) -> None:
        items = self._screen(items, failed)
        if not items:
            return
        evs = [ev for ev, _ in items if isinstance(ev, Event)]
        extras = [x for x, _ in items if isinstance(x, _Extra)]
        first = self._next_stream
        first_backfill = self._next_backfill
        n = 0
        for ev in evs:
            m = meta(ev)
            if m.backfilled:
                # History older than anything in the room: below every stream ordering,
                # in the order queued (newest first), so /messages pages back through it.
                m.stream_ordering = self._next_backfill
                self._next_backfill -= 1
            else:
                m.stream_ordering = first + n
                n += 1
        self._next_stream = first + n
        try:
            if extras or self.in_transaction:
                await self.db.run(_write_batch, evs, extras, tuple(self.in_transaction))
            else:
                await self.db.run(store_write.write_events, evs)
        except Exception as exc:  # split, or the sender gets the failure
            self._next_stream = first
            self._next_backfill = first_backfill
            for ev in evs:
                meta(ev).stream_ordering = None
            if len(items) == 1:
                log.error(
                    "persisting %s failed: %s",
                    evs[0].event_id if evs else "an extra",
                    exc,
                    exc_info=exc if whole else None,
                )
                if evs:
                    self._mark_failed(evs[0])
                failed.append((items[0][0], items[0][1], exc))
                return
            if whole:
                log.exception("persisting %d events failed: writing them in parts", len(evs))
            # In order: the first half commits (or fails) before the second is tried, so
            # stream orderings stay ascending in the order queued.
            half = len(items) // 2
            await self._write_part(items[:half], failed)
            await self._write_part(items[half:], failed)
            return
        self._committed(items, evs, first, n)

    def _committed(
        self,
        items: list[tuple[Event | _Extra, defer.Deferred]],
        evs: list[Event],
        first: int,
        n: int,
    ) -> None:
        for x, d in items:
            if isinstance(x, _Extra):
                d.callback(None)
        if not evs:
            return
        if n:
            self.max_persisted = first + n - 1
        self.batches_written += 1
        for ev in evs:
            m = meta(ev)
            m.new_room = None
            m.extremities_after = None
            m.current_state_delta = None
            m.row_json = None
        for hook in self.on_committed:
            try:
                hook(evs)
            except Exception:
                log.exception("on_committed hook failed")
        visible = [ev for ev in evs if not is_hidden(ev) and not meta(ev).backfilled]
        if visible:
            for hook in self.on_persisted:
                try:
                    hook(visible)
                except Exception:
                    log.exception("on_persisted hook failed")
        _count_persisted(len(evs))
        # Senders first, then the long-polling syncs: a sender's response is written
        # before a sync that carries the same event (the remote echo), the order clients
        # expect (matrix-js-sdk fails a thread reply whose echo comes first).  Both happen
        # in this reactor turn, so no request can see the send answered but not notified.
        for item, d in items:
            if isinstance(item, Event):
                d.callback(item)
        if visible:
            self._notify(visible)

    def _report_failed(
        self, failed: list[tuple[Event | _Extra, defer.Deferred, BaseException]]
    ) -> None:
        """After the write's storable events committed: the failed events leave the
        in-memory caches (``on_failed``), then their senders get the error."""
        evs = [ev for ev, _, _ in failed if isinstance(ev, Event)]
        for ev in evs:
            m = meta(ev)
            m.stream_ordering = None
            m.row_json = None
        if evs:
            for hook in self.on_failed:
                try:
                    hook(evs)
                except Exception:
                    log.exception("on_failed hook failed")
        for _, d, exc in failed:
            d.errback(exc)

    def _notify(self, evs: Sequence[Event]) -> None:
        if self.notifier is None:
            return
        per_room: dict[str, tuple[int, set[str]]] = {}
        for ev in evs:
            stream, extra = per_room.get(ev.room_id, (0, set()))
            if ev.type == MEMBER and ev.is_state:
                extra.add(ev.key[1])
            per_room[ev.room_id] = (max(stream, committed_stream(ev)), extra)
        for room_id, (stream, extra) in per_room.items():
            try:
                self.notifier.notify_room_event(room_id, stream, extra_user_ids=sorted(extra))
            except Exception:  # a broken waiter must not fail the send
                log.exception("notifier failed for %s", room_id)
