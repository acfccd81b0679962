"""Running the gateway's async services from blocking code (the ``parta gateway`` CLI).

``RosterService`` is written for the reactor (``await db.run(fn)``).  Admin commands work on
the database directly, like ``parta node user add``, so they run the same service over a
``BlockingDatabase``: ``run`` executes ``fn`` in one transaction right away and returns an
already-fired Deferred, and ``wait`` collects the result of a coroutine that therefore
completes synchronously.  No reactor is started.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Coroutine

from twisted.internet import defer
from twisted.python.failure import Failure


class BlockingDatabase:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred:
        try:
            with self.engine.begin() as conn:
                return defer.succeed(fn(conn, *args, **kwargs))
        except Exception:  # noqa: BLE001 - handed to the awaiting coroutine
            return defer.fail()

    def run_sync(self, fn: Callable[[Any], Any]) -> Any:
        with self.engine.begin() as conn:
            return fn(conn)


class WallClock:
    def time_ms(self) -> int:
        return int(time.time() * 1000)


def wait(coro: Coroutine[Any, Any, Any]) -> Any:
    """The result of ``coro`` (which must not wait for the reactor); re-raises its error."""
    d = defer.ensureDeferred(coro)
    out: list = []
    d.addBoth(out.append)
    if not out:  # pragma: no cover - a programming error, not an operator's
        raise RuntimeError("coroutine did not complete without a reactor")
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]
