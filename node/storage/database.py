"""The database handle: SQLAlchemy Core engine + a thread pool so no DB work runs on the reactor.

``await db.run(fn, *args)`` runs ``fn(conn, *args)`` inside one transaction on a pool thread and
returns its result.  SQLite (the embedded default) runs in WAL mode with a single DB thread, so
writes never contend; PostgreSQL gets a small pool of threads and connections.

``await db.read(fn, *args)`` is for hot read-only queries: on SQLite they run on a second
thread and connection (``PRAGMA query_only``), so they do not queue behind the writes (WAL
readers see the last committed state and never block the writer); on PostgreSQL it is
``run``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from .checkpoint import WalCheckpointer, writer_pragmas

log = logging.getLogger("parta.db")
T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)


class Database:
    def __init__(self, url: str, reactor: Any, *, threads_max: int | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        n = 1 if self.is_sqlite else (threads_max or 8)
        self.engine = make_engine(url, pool_size=n)
        self.reactor = reactor
        self._local_conn: Connection | None = None  # SQLite: the DB thread's own
        self._read_conn: Connection | None = None  # SQLite: the read thread's own
        self.pool = ThreadPool(minthreads=1, maxthreads=n, name="parta-db")
        self.pool.start()
        self.read_pool: ThreadPool | None = None
        # A file database checkpoints its WAL on a thread of its own (``checkpoint``).
        path = self.engine.url.database if self.is_sqlite else None
        self.checkpointer: WalCheckpointer | None = None
        if path and path != ":memory:" and not path.startswith("file:"):
            event.listen(self.engine, "connect", lambda c, _r: writer_pragmas(c))
            self.checkpointer = WalCheckpointer(path, reactor)
            # (An in-memory database exists once per connection: no reader there.)
            self.read_pool = ThreadPool(minthreads=0, maxthreads=1, name="parta-db-read")
            self.read_pool.start()
        self._shutdown_trigger = reactor.addSystemEventTrigger("during", "shutdown", self.close)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in a transaction off the reactor thread."""
        return await threads.deferToThreadPool(
            self.reactor, self.pool, self._in_txn, fn, args, kwargs
        )

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``run`` for a function that only reads (SQLite refuses its writes)."""
        if self.read_pool is None:
            return await self.run(fn, *args, **kwargs)
        return await threads.deferToThreadPool(
            self.reactor, self.read_pool, self._in_read_txn, fn, args, kwargs
        )

    def _in_read_txn(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        conn = self._read_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._read_conn = self.engine.connect()
            conn.exec_driver_sql("PRAGMA query_only=ON")
            conn.commit()
        try:
            with conn.begin():
                return fn(conn, *args, **kwargs)
        except Exception:
            if conn.invalidated:
                self._read_conn = None
            raise

    def _in_txn(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                return fn(conn, *args, **kwargs)
        # SQLite has one DB thread: it keeps its connection instead of checking one out of
        # the pool (and resetting it) for every call, which cost more than small queries.
        local = self._local_conn
        if local is None or local.closed or local.invalidated:
            local = self._local_conn = self.engine.connect()
        conn = local
        try:
            # The sqlite3 connection itself: the DB-API protocol has no total_changes.
            raw: Any = conn.connection.dbapi_connection
            changes = raw.total_changes
            with conn.begin():
                result = fn(conn, *args, **kwargs)
            if self.checkpointer is not None and raw.total_changes != changes:
                self.checkpointer.mark_dirty()
            return result
        except Exception:
            if conn.invalidated:
                self._local_conn = None
            raise

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """For CLI tools and start-up only (blocks the caller)."""
        with self.engine.begin() as conn:
            return fn(conn)

    def pool_stats(self) -> dict[str, int]:
        return {
            "threads_busy": len(self.pool.working),
            "threads_max": self.pool.max,
            "queued": self.pool._queue.qsize(),
        }

    def close(self) -> None:
        if self.pool.started:
            self.pool.stop()
        if self.read_pool is not None and self.read_pool.started:
            self.read_pool.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        for attr in ("_local_conn", "_read_conn"):
            conn = getattr(self, attr)
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # closing at shutdown
                    log.debug("closing an SQLite connection failed", exc_info=True)
                setattr(self, attr, None)
        self.engine.dispose()
