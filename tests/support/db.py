"""``InlineDB``: ``node.storage.database.Database`` without threads, for unit tests.

Every ``run`` executes ``fn(conn, *args, **kwargs)`` at once in one transaction (rolled back
when ``fn`` raises, as the real one) and returns an already-fired Deferred, so a service on
top of it completes synchronously and ``support.deferreds.result_of`` can drive it without
a reactor.  The tables are whatever ``schema`` modules the caller has imported (each area's
test helpers import theirs) when the ``InlineDB`` is created.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool
from twisted.internet import defer

from node.storage.database import make_engine
from schema.meta import metadata

from .deferreds import result_of


def _foreign_keys_on(dbapi_conn: Any, _record: Any) -> None:
    """The production SQLite pragma that matters in memory: cascades and references are
    enforced (the others concern files: WAL, fsync, lock waits)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class InlineDB:
    """``Database.run`` / ``read`` executed synchronously.

    Without ``url``: a private in-memory SQLite database on one connection shared by every
    thread (``StaticPool``), so all calls see the same data.  With ``url``: a real engine
    (a SQLite file, or PostgreSQL for the backend tests).

    ``runs`` counts calls (tests assert that a path is served from memory), and
    ``fail_next`` makes the next ``write_events`` transaction fail as a full disk would.
    """

    def __init__(self, url: str | None = None) -> None:
        if url is None:
            self.engine = create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            event.listen(self.engine, "connect", _foreign_keys_on)
        else:
            self.engine = make_engine(url, pool_size=2)
        metadata.create_all(self.engine)
        self.is_sqlite = url is None or url.startswith("sqlite")
        self.fail_next = False
        self.runs = 0

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred:
        self.runs += 1
        if self.fail_next and getattr(fn, "__name__", "") == "write_events":
            self.fail_next = False
            return defer.fail(RuntimeError("disk full"))
        try:
            with self.engine.begin() as conn:
                return defer.succeed(fn(conn, *args, **kwargs))
        except Exception:
            return defer.fail()

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred:
        """``Database.read``: the real one reads on its own connection; here the same."""
        return self.run(fn, *args, **kwargs)

    def run_sync(self, fn: Callable[[Connection], Any]) -> Any:
        with self.engine.begin() as conn:
            return fn(conn)


def run(db: InlineDB, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(conn, *args, **kwargs)`` in one ``db`` transaction, and its result at once."""
    return result_of(db.run(fn, *args, **kwargs))
