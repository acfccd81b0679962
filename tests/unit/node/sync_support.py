"""Shared helpers for the sync area's unit tests (not a test module)."""

from __future__ import annotations

from twisted.internet import defer

import schema.events  # noqa: F401 - registers the tables
import schema.sync  # noqa: F401
from node.storage.database import make_engine
from schema.meta import metadata


class SyncDB:
    """``Database.run`` executed synchronously (SQLite), returning an already-fired Deferred."""

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

    def run_sync(self, fn):
        with self.engine.begin() as conn:
            return fn(conn)


def result_of(coro_or_deferred):
    """The result of a coroutine/Deferred that completes synchronously."""
    d = defer.ensureDeferred(coro_or_deferred) if not isinstance(coro_or_deferred,
                                                                 defer.Deferred) \
        else coro_or_deferred
    out: list = []
    d.addBoth(out.append)
    assert out, "did not complete synchronously"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]
