"""Shared helpers for the gateway unit tests (not a test module)."""

from __future__ import annotations

from twisted.internet import defer, task

import schema.gateway  # noqa: F401 - registers the gateway tables
from node.clock import ReactorClock
from node.storage.database import make_engine
from schema.meta import metadata


class InlineDB:
    """``Database.run`` on an in-memory SQLite engine, executed synchronously: one
    transaction per call, rolled back when ``fn`` raises (as the real one)."""

    def __init__(self, url: str = "sqlite://") -> None:
        self.engine = make_engine(url)
        self.is_sqlite = True
        metadata.create_all(self.engine)

    def run(self, fn, *args, **kwargs):
        try:
            with self.engine.begin() as conn:
                return defer.succeed(fn(conn, *args, **kwargs))
        except Exception:
            return defer.fail()

    def read(self, fn, *args, **kwargs):
        """``Database.read``: the real one reads on its own connection; here the same."""
        return self.run(fn, *args, **kwargs)

    def run_sync(self, fn):
        with self.engine.begin() as conn:
            return fn(conn)


def fake_clock(start_ms: int):
    """A ``ReactorClock`` over ``task.Clock`` (advance with ``.reactor.advance(seconds)``)."""
    reactor = task.Clock()
    reactor.advance(start_ms / 1000)
    clock = ReactorClock(reactor)
    clock.reactor = reactor
    return clock


def result_of(coro):
    """The result of a coroutine that completes synchronously (raises its exception)."""
    d = defer.ensureDeferred(coro)
    out: list = []
    d.addBoth(out.append)
    assert out, "did not complete synchronously"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]
