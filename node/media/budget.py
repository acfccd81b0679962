"""Admission of memory-heavy jobs (thumbnailing) so that no burst of requests can exhaust a node.

Decoding images is the one media job whose memory does not follow the upload size: a 150 KB
PNG can decode to 196 MB, and four thumbnail sizes of it requested at once used to decode it
four times in parallel on the thread pool.  ``WorkBudget`` admits a job only when both a slot
(``slots`` jobs at once) and its estimated memory (within ``capacity_bytes``) are free; the
others wait in FIFO order on the reactor - as Deferreds, holding no thread and no pixels.  A job
estimated above the whole capacity still runs, alone.  When ``max_waiting`` jobs already wait,
a new one is refused at once with 429 ``M_LIMIT_EXCEEDED`` and ``retry_after_ms`` (client-server
API "Rate limiting"), so the queue cannot grow without bound either.

Pure bookkeeping on the reactor thread: no clock, no threads, no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Awaitable, Callable, TypeVar

from twisted.internet import defer

from node.ratelimit import LimitExceeded

T = TypeVar("T")

RETRY_AFTER_MS = 2_000  # what a refused client is told to wait: a few thumbnails' time


class WorkBudget:
    def __init__(self, *, capacity_bytes: int, slots: int, max_waiting: int) -> None:
        if capacity_bytes < 1 or slots < 1 or max_waiting < 0:
            raise ValueError(
                "a work budget needs capacity_bytes >= 1, slots >= 1, max_waiting >= 0"
            )
        self.capacity = capacity_bytes
        self.slots = slots
        self.max_waiting = max_waiting
        self.used_bytes = 0
        self.running = 0
        self._waiting: deque[tuple[int, defer.Deferred]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def run(self, cost_bytes: int, job: Callable[[], Awaitable[T]]) -> T:
        """Run ``job()`` once ``cost_bytes`` (clamped to the capacity) and a slot are free."""
        cost = max(0, min(int(cost_bytes), self.capacity))
        if self._waiting or not self._fits(cost):
            if len(self._waiting) >= self.max_waiting:
                raise LimitExceeded(RETRY_AFTER_MS)
            entry: tuple[int, defer.Deferred] = (cost, defer.Deferred(self._forget))
            self._waiting.append(entry)
            await entry[1]  # resolved by _wake with cost and slot reserved
        else:
            self._reserve(cost)
        try:
            return await job()
        finally:
            self.used_bytes -= cost
            self.running -= 1
            self._wake()

    def _fits(self, cost: int) -> bool:
        return self.running < self.slots and self.used_bytes + cost <= self.capacity

    def _reserve(self, cost: int) -> None:
        self.used_bytes += cost
        self.running += 1

    def _wake(self) -> None:
        # Strict FIFO: a large job at the head is not overtaken by small ones behind it.
        while self._waiting and self._fits(self._waiting[0][0]):
            cost, d = self._waiting.popleft()
            self._reserve(cost)
            d.callback(None)

    def _forget(self, d: defer.Deferred) -> None:
        """Canceller: a waiter whose request went away leaves the queue without running."""
        for entry in self._waiting:
            if entry[1] is d:
                self._waiting.remove(entry)
                break
        self._wake()
