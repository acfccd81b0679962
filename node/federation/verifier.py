"""Event signature verification on worker threads (step 2 of the checks on receipt).

Spec: server-server API "Checks performed on receipt of a PDU", step 2 ("Passes signature
checks, otherwise it is dropped").  ``federation.events.checks.prepare_received_event`` does
everything of steps 1-3 except the ed25519 verifications and hands those back as jobs; this
module runs them.  libsodium (through PyNaCl's cffi bindings) releases the GIL while it
verifies, so a pool of threads verifies on the other cores while the reactor thread goes on
with the next PDUs of a transaction: a transaction's signatures cost the reactor almost
nothing.  With ``threads=0`` (``federation.verify_threads: 0``, or a reactor without threads, as
in unit tests) the jobs run inline.

``verify(batch)``: ``batch`` is a list of per-event job lists; the result (a Deferred) is a
list of the same length with None for an event whose signatures all hold, else the
``SignatureInvalid`` for its first bad one.  ``submit(batch)`` returns the ``VerifyTask``
behind it: a caller about to wait for it (the reactor, with nothing else to do) can run a
task that no thread has started yet itself (``try_run_here``), so a transaction's
verifications finish on both cores instead of one thread's queue.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.python.threadpool import ThreadPool

from federation.events.checks import VerifyJob, run_verify_jobs
from federation.signing import SignatureInvalid

Results = list["SignatureInvalid | None"]


def default_threads() -> int:
    """One verifier thread per core, at most 4 (the reactor thread keeps a core busy too)."""
    return max(0, min(4, os.cpu_count() or 1))


def run_batch(batch: Sequence[Sequence[VerifyJob]]) -> Results:
    """``verify``'s per-event results, computed on the calling thread."""
    return [run_verify_jobs(jobs) if jobs else None for jobs in batch]


_run_batch = run_batch
_SKIPPED = object()  # a thread found its task already run elsewhere


class VerifyTask:
    """One batch handed to the verifier; whoever claims it first (a pool thread or the
    caller through ``try_run_here``) runs it, and ``deferred`` fires once."""

    __slots__ = ("batch", "deferred", "_claimed", "_lock")

    def __init__(self, batch: list, lock: threading.Lock, claimed: bool = False) -> None:
        self.batch = batch
        self.deferred: defer.Deferred = defer.Deferred()
        self._claimed = claimed
        self._lock = lock

    def claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def try_run_here(self) -> bool:
        """Run the batch on the calling (reactor) thread unless a thread has it already;
        True if it ran here (``deferred`` has fired)."""
        if not self.claim():
            return False
        try:
            results = run_batch(self.batch)
        except Exception:  # noqa: BLE001 - delivered through the Deferred
            self.deferred.errback()
        else:
            self.deferred.callback(results)
        return True


class SignatureVerifier:
    """Batches of event signature verifications on a pool of ``threads`` threads."""

    def __init__(self, reactor: Any, threads: int | None = None) -> None:
        self.reactor = reactor
        self.threads = default_threads() if threads is None else max(0, int(threads))
        if not IReactorThreads.providedBy(reactor):
            self.threads = 0  # e.g. a test clock: nothing to hand results back to
        self._pool: ThreadPool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadPool:
        if self._pool is None:
            self._pool = ThreadPool(minthreads=0, maxthreads=self.threads, name="parta-verify")
            self._pool.start()
            if hasattr(self.reactor, "addSystemEventTrigger"):
                # self.stop, not the pool's: a pool already stopped refuses a second stop.
                self.reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return self._pool

    def verify(self, batch: Sequence[Sequence[VerifyJob]]) -> defer.Deferred:
        """A Deferred of the per-event results of ``batch`` (see the module docs)."""
        return self.submit(batch).deferred

    def submit(self, batch: Sequence[Sequence[VerifyJob]]) -> VerifyTask:
        """``verify``, returning the task (its ``deferred`` has the results)."""
        task = VerifyTask(list(batch), self._lock)
        if self.threads == 0 or not any(batch):
            task.try_run_here()
            return task
        self._get_pool().callInThreadWithCallback(
            lambda ok, result: self.reactor.callFromThread(self._finished, task, ok, result),
            self._in_thread,
            task,
        )
        return task

    @staticmethod
    def _in_thread(task: VerifyTask) -> Any:
        if not task.claim():
            return _SKIPPED
        return run_batch(task.batch)

    @staticmethod
    def _finished(task: VerifyTask, ok: bool, result: Any) -> None:
        if ok and result is _SKIPPED:
            return  # the reactor ran it (try_run_here) and fired the Deferred
        if ok:
            task.deferred.callback(result)
        else:
            task.deferred.errback(result)

    def stop(self) -> None:
        if self._pool is not None and self._pool.started:
            self._pool.stop()
        self._pool = None
