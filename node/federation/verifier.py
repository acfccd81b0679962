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
``SignatureInvalid`` for its first bad one.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from twisted.internet import defer, threads
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


class SignatureVerifier:
    """Batches of event signature verifications on a pool of ``threads`` threads."""

    def __init__(self, reactor: Any, threads: int | None = None) -> None:
        self.reactor = reactor
        self.threads = default_threads() if threads is None else max(0, int(threads))
        if not IReactorThreads.providedBy(reactor):
            self.threads = 0        # e.g. a test clock: nothing to hand results back to
        self._pool: ThreadPool | None = None

    def _get_pool(self) -> ThreadPool:
        if self._pool is None:
            self._pool = ThreadPool(minthreads=0, maxthreads=self.threads,
                                    name="parta-verify")
            self._pool.start()
            if hasattr(self.reactor, "addSystemEventTrigger"):
                # self.stop, not the pool's: a pool already stopped refuses a second stop.
                self.reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        return self._pool

    def verify(self, batch: Sequence[Sequence[VerifyJob]]) -> defer.Deferred:
        """A Deferred of the per-event results of ``batch`` (see the module docs)."""
        if self.threads == 0 or not any(batch):
            return defer.succeed(run_batch(batch))
        return threads.deferToThreadPool(self.reactor, self._get_pool(), run_batch,
                                         list(batch))

    def stop(self) -> None:
        if self._pool is not None and self._pool.started:
            self._pool.stop()
        self._pool = None
