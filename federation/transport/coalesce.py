"""Coalescing concurrent calls: callers asking for the same key while a call is running
share its result (or its failure) instead of starting another one.

Used for key fetches (one fetch per server at a time) and ``.well-known`` lookups.  Built on
Twisted ``Deferred``s because the node's coroutines run under ``defer.ensureDeferred``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Hashable, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


class Coalescer:
    def __init__(self) -> None:
        self._running: dict[Hashable, list[defer.Deferred[Any]]] = {}

    def is_running(self, key: Hashable) -> bool:
        return key in self._running

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        waiters = self._running.get(key)
        if waiters is not None:
            d: defer.Deferred[T] = defer.Deferred()
            waiters.append(d)
            return await d
        self._running[key] = waiters = []
        try:
            result = await fn()
        except BaseException:
            failure = Failure()
            del self._running[key]
            for d in waiters:
                d.errback(failure)
            raise
        del self._running[key]
        for d in waiters:
            d.callback(result)
        return result
