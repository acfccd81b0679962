"""Sending the queued PDUs and EDUs of each destination as transactions.

Spec: server-server API "Transactions" (``PUT /_matrix/federation/v1/send/{txnId}``,
``transactions.yaml``): at most 50 PDUs and 100 EDUs per transaction; "The sending server
must wait and retry for a 200 OK response before sending a transaction with a different
``txnId``"; the 200 response carries per-PDU results, which do not fail the transaction.

Per destination there is at most one loop running and so one transaction in flight.  The
loop claims the next batch from the persisted queue (``queue.claim_batch``: the in-flight
transaction again after a failure or a restart, with the same ``txnId`` and the same
rows), sends it, and on 200 deletes the rows and goes on until the queue is empty -- that
is the catch-up after an outage: everything queued goes out, in stream order, 50 PDUs at a
time.  A failure (unreachable, TLS, timeout, non-200) records the retry state in the
database and schedules one retry after the backoff delay (``backoff.py``); new events for
a destination that is backing off only queue up.  ``destination_up`` (e.g. the server just
sent us a request) ends the wait at once.

The database work of all loops is coalesced (``_Coalesced``): claims (and completions)
asked for while one database call runs are served together by the next one, with
``queue.claim_batches`` / ``queue.complete_txns``, whose statements do not grow with the
number of destinations.  So the fan-out of one event to N servers costs a handful of
database transactions instead of 2N (one SQLite writer thread; see docs/benchmarks.md
"City gateway").

A 400 ``M_BAD_JSON``/``M_NOT_JSON``/``M_TOO_LARGE`` says the transaction itself can never
be accepted: it is logged and dropped rather than blocking the queue forever.  Nothing is
ever sent to a destination the server policy refuses (``policy.allow_outbound``); what was
queued for it is dropped.
"""

from __future__ import annotations

import logging
import random as _random
from typing import Any, Awaitable, Callable, Mapping

from twisted.internet import defer
from twisted.python.failure import Failure

from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError

from . import queue
from .backoff import BackoffPolicy, RetryState

log = logging.getLogger("parta.federation.outbound")

UNSENDABLE = ("M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE")

GetEvents = Callable[[list[str]], Awaitable[Mapping[str, Any]]]


class _Coalesced:
    """``await call(key)``: ``fn(conn, keys, *args())`` -> ``{key: result}`` in one database
    transaction for every key asked for while the previous call was running."""

    def __init__(self, db: Any, fn: Callable[..., Any], args: Callable[[], tuple]) -> None:
        self.db = db
        self.fn = fn
        self.args = args
        self._pending: dict[Any, list[defer.Deferred]] = {}
        self._running = False

    def __call__(self, key: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self._pending.setdefault(key, []).append(d)
        if not self._running:
            defer.ensureDeferred(self._drain())
        return d

    async def _drain(self) -> None:
        self._running = True
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    results = await self.db.run(self.fn, list(batch), *self.args())
                except Exception:  # noqa: BLE001 - every waiting loop gets the failure
                    failure = Failure()
                    for waiters in batch.values():
                        for d in waiters:
                            d.errback(failure)
                    continue
                for key, waiters in batch.items():
                    for d in waiters:
                        d.callback((results or {}).get(key))
        finally:
            self._running = False


class TransactionSender:
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        client: Any,
        server_name: str,
        policy: Any,
        get_events: GetEvents,
        backoff: BackoffPolicy | None = None,
        random: Callable[[], float] | None = None,
        max_pdus: int = queue.MAX_PDUS,
        max_edus: int = queue.MAX_EDUS,
        request_timeout: float | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.client = client
        self.server_name = server_name
        self.policy = policy
        self.get_events = get_events
        self.backoff = backoff or BackoffPolicy()
        self.random = random or _random.random
        self.max_pdus = min(max_pdus, queue.MAX_PDUS)
        self.max_edus = min(max_edus, queue.MAX_EDUS)
        self.request_timeout = request_timeout
        self._running: set[str] = set()
        self._rewake: set[str] = set()
        self._timers: dict[str, Any] = {}
        self._retry: dict[str, RetryState] = {}
        self._loops: dict[str, defer.Deferred] = {}
        self._stopped = False
        self._claim = _Coalesced(
            db, _claim_all, lambda: (self.clock.time_ms(), self.max_pdus, self.max_edus)
        )
        self._complete = _Coalesced(db, _complete_all, lambda: (self.clock.time_ms(),))
        # Observability (tests, metrics): transactions sent OK / failed attempts.
        self.sent_transactions = 0
        self.failed_attempts = 0

    # --- start / stop -------------------------------------------------------------------
    async def start(self) -> None:
        """Pick up the persisted retry states; resume destinations with queued data."""
        states = await self.db.run(queue.load_retry_states)
        now = self.clock.time_ms()
        for dest, (state, queued) in states.items():
            if state.failures:
                self._retry[dest] = state
            if not queued:
                continue
            if state.is_backing_off(now):
                self._schedule(dest, state.next_retry_ts - now)
            else:
                self.wake(dest)

    def stop(self) -> None:
        self._stopped = True
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()

    # --- triggers -----------------------------------------------------------------------
    def wake(self, destination: str) -> None:
        """New data is queued for ``destination``: send it unless it is backing off."""
        if self._stopped or destination == self.server_name:
            return
        if destination in self._running:
            self._rewake.add(destination)
            return
        state = self._retry.get(destination)
        if state is not None and state.is_backing_off(self.clock.time_ms()):
            if destination not in self._timers:
                self._schedule(destination, state.next_retry_ts - self.clock.time_ms())
            return
        self._start_loop(destination)

    def destination_up(self, destination: str) -> None:
        """``destination`` is reachable again: stop waiting and send what is queued."""
        timer = self._timers.pop(destination, None)
        if timer is not None and timer.active():
            timer.cancel()
        if self._retry.pop(destination, None) is not None:
            defer.ensureDeferred(self._reset_retry(destination))
        self.wake(destination)

    def retry_state(self, destination: str) -> RetryState:
        return self._retry.get(destination, RetryState())

    def is_idle(self) -> bool:
        """No loop is running (tests)."""
        return not self._running

    def loop_deferred(self, destination: str) -> defer.Deferred | None:
        """The Deferred of the destination's running loop (tests wait on it)."""
        return self._loops.get(destination)

    # --- internals ----------------------------------------------------------------------
    async def _reset_retry(self, destination: str) -> None:
        try:
            await self.db.run(queue.reset_retry, destination)
        except Exception:
            log.exception("event=federation_retry_reset_failed destination=%s", destination)

    def _schedule(self, destination: str, delay_ms: int) -> None:
        old = self._timers.pop(destination, None)
        if old is not None and old.active():
            old.cancel()
        if self._stopped:
            return
        self._timers[destination] = self.clock.call_later(
            max(0, delay_ms) / 1000.0, self._retry_due, destination
        )

    def _retry_due(self, destination: str) -> None:
        self._timers.pop(destination, None)
        if destination in self._running:
            self._rewake.add(destination)
            return
        self._start_loop(destination)

    def _start_loop(self, destination: str) -> None:
        self._running.add(destination)
        d = defer.ensureDeferred(self._loop(destination))
        self._loops[destination] = d

        def done(result: Any) -> Any:
            self._running.discard(destination)
            self._loops.pop(destination, None)
            if destination in self._rewake and not self._stopped:
                self._rewake.discard(destination)
                self.wake(destination)
            return result

        d.addBoth(done)

    async def _loop(self, destination: str) -> None:
        try:
            while not self._stopped:
                self._rewake.discard(destination)
                if not self.policy.allow_outbound(destination):
                    dropped = await self.db.run(queue.drop_destination, destination)
                    log.warning(
                        "event=federation_outbound_refused destination=%s "
                        "dropped_rows=%d reason=server_policy",
                        destination,
                        dropped,
                    )
                    return
                batch = await self._claim(destination)
                if batch is None:
                    return
                ok = await self._send(destination, batch)
                if not ok:
                    return
        except Exception:  # never leave a destination stuck
            log.exception("event=federation_send_loop_failed destination=%s", destination)
            await self._failed(destination, "internal error")

    async def _send(self, destination: str, batch: queue.Batch) -> bool:
        events = await self.get_events(list(batch.event_ids)) if batch.event_ids else {}
        pdus = []
        for eid in batch.event_ids:
            ev = events.get(eid)
            if ev is None:
                log.warning(
                    "event=federation_pdu_missing destination=%s event_id=%s", destination, eid
                )
                continue
            pdus.append(dict(ev.pdu))
        body = {
            "origin": self.server_name,
            "origin_server_ts": self.clock.time_ms(),
            "pdus": pdus,
            "edus": list(batch.edus),
        }
        try:
            status, resp = await self.client.request(
                destination,
                E.SEND.method,
                E.SEND.path(batch.txn_id),
                json_body=body,
                timeout=self.request_timeout,
            )
        except FederationRequestError as exc:
            await self._failed(destination, str(exc))
            return False
        if status == 200:
            await self._complete((destination, batch.txn_id))
            self._retry.pop(destination, None)
            self.sent_transactions += 1
            self._log_pdu_errors(destination, batch.txn_id, resp)
            log.debug(
                "event=federation_txn_sent destination=%s txn_id=%s pdus=%d edus=%d",
                destination,
                batch.txn_id,
                len(pdus),
                len(batch.edus),
            )
            return True
        errcode = resp.get("errcode") if isinstance(resp, dict) else None
        if status in (400, 413) and errcode in UNSENDABLE:
            log.error(
                "event=federation_txn_refused destination=%s txn_id=%s status=%s "
                "errcode=%s action=dropped pdus=%d edus=%d",
                destination,
                batch.txn_id,
                status,
                errcode,
                len(pdus),
                len(batch.edus),
            )
            await self.db.run(queue.complete_txn, destination, batch.txn_id, self.clock.time_ms())
            self._retry.pop(destination, None)  # it answered: it is up
            return True
        await self._failed(destination, f"HTTP {status} {errcode or ''}".strip())
        return False

    @staticmethod
    def _log_pdu_errors(destination: str, txn_id: str, resp: Any) -> None:
        results = resp.get("pdus") if isinstance(resp, dict) else None
        if not isinstance(results, dict):
            return
        for eid, result in results.items():
            if isinstance(result, dict) and result.get("error"):
                log.info(
                    "event=federation_pdu_refused destination=%s txn_id=%s event_id=%s error=%s",
                    destination,
                    txn_id,
                    eid,
                    result.get("error"),
                )

    async def _failed(self, destination: str, reason: str) -> None:
        self.failed_attempts += 1
        state = self._retry.get(destination, RetryState()).after_failure(
            self.backoff, self.clock.time_ms(), self.random
        )
        self._retry[destination] = state
        log.info(
            "event=federation_destination_down destination=%s failures=%d retry_in_ms=%d reason=%s",
            destination,
            state.failures,
            state.retry_interval_ms,
            reason,
        )
        try:
            await self.db.run(queue.record_failure, destination, state)
        except Exception:  # the in-memory state still drives the retry
            log.exception("event=federation_retry_state_write_failed destination=%s", destination)
        self._schedule(destination, state.retry_interval_ms)


def _claim_all(
    conn: Any, destinations: list[str], now_ms: int, max_pdus: int, max_edus: int
) -> dict:
    return queue.claim_batches(conn, destinations, now_ms, max_pdus=max_pdus, max_edus=max_edus)


def _complete_all(conn: Any, done: list[tuple[str, str]], now_ms: int) -> dict:
    queue.complete_txns(conn, done, now_ms)
    return {}
