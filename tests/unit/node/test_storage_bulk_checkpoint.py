"""``node.storage``: multi-row inserts (``bulk``), the read connection (``Database.read``)
and the WAL checkpoints off the DB thread (``checkpoint``).

``Database`` runs on real thread pools here; the reactor is a stand-in whose
``callFromThread`` queue the test drains on the main thread and whose timers are a
``task.Clock``, so the checkpoint interval is advanced by hand."""

from __future__ import annotations

import os
import queue
import sqlite3
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from support.db import InlineDB
from twisted.internet import defer, task

from node.storage import bulk
from node.storage.checkpoint import BACKSTOP_PAGES, DEFAULT_INTERVAL_S
from node.storage.database import Database
from test_rooms_postgres import pg_url  # noqa: F401 - the PostgreSQL fixture

# --- bulk.chunk_sizes / insert_rows -------------------------------------------------------


def test_chunk_sizes_examples() -> None:
    assert bulk.chunk_sizes(0, 13) == []
    assert bulk.chunk_sizes(1, 13) == [1]
    assert bulk.chunk_sizes(50, 13) == [32, 16, 2]  # a full inbound transaction
    assert bulk.chunk_sizes(200, 13) == [64, 64, 64, 8]  # 64 * 13 = 832 <= 999 parameters


@given(st.integers(0, 3000), st.integers(1, 40))
def test_chunk_sizes_cover_the_rows_within_the_parameter_limit(total: int, width: int) -> None:
    sizes = bulk.chunk_sizes(total, width)
    assert sum(sizes) == total
    assert all(s & (s - 1) == 0 for s in sizes)  # powers of two
    assert all(s * width <= bulk.MAX_PARAMS or s == 1 for s in sizes)
    assert sizes == sorted(sizes, reverse=True)
    assert len(set(sizes)) <= 10  # few distinct statements


def _table(db: InlineDB) -> None:
    db.run_sync(
        lambda c: c.execute(
            text("CREATE TABLE bulk_t (k INTEGER PRIMARY KEY, name VARCHAR(50), note TEXT)")
        )
    )


def _rows(db: InlineDB) -> list[tuple]:
    return db.run_sync(
        lambda c: [tuple(r) for r in c.execute(text("SELECT k, name, note FROM bulk_t ORDER BY k"))]
    )


def _insert_scenario(db: InlineDB) -> None:
    _table(db)
    for n in (0, 1, 50, 77, 333):
        db.run_sync(lambda c: c.execute(text("DELETE FROM bulk_t")))
        rows = [(i, f"n{i}", None if i % 3 else "é ☃ \"q\" 'x'") for i in range(n)]
        db.run_sync(lambda c, rows=rows: bulk.insert_rows(c, "bulk_t", ("k", "name", "note"), rows))
        assert _rows(db) == rows
    # Conflicts: skipped with ignore_conflicts, an error (and nothing written) without.
    db.run_sync(
        lambda c: bulk.insert_rows(
            c,
            "bulk_t",
            ("k", "name", "note"),
            [(1, "dup", None), (5000, "new", None)],
            ignore_conflicts=True,
        )
    )
    got = dict((k, name) for k, name, _ in _rows(db))
    assert got[1] == "n1" and got[5000] == "new"
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        db.run_sync(
            lambda c: bulk.insert_rows(
                c, "bulk_t", ("k", "name", "note"), [(6000, "a", None), (2, "dup", None)]
            )
        )
    assert 6000 not in {k for k, _, _ in _rows(db)}


def test_insert_rows_on_sqlite() -> None:
    _insert_scenario(InlineDB())


@pytest.mark.postgres
def test_insert_rows_on_postgres(pg_url) -> None:  # noqa: F811 - the pytest fixture imported above
    db = InlineDB(pg_url)
    db.run_sync(lambda c: c.execute(text("DROP TABLE IF EXISTS bulk_t")))
    try:
        _insert_scenario(db)
    finally:
        db.run_sync(lambda c: c.execute(text("DROP TABLE IF EXISTS bulk_t")))


# --- Database.read and the checkpointer ----------------------------------------------------


class _Reactor(task.Clock):
    """Timers from ``task.Clock``; ``callFromThread`` queued for the main thread."""

    def __init__(self) -> None:
        super().__init__()
        self.from_threads: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kw):  # noqa: N802 - Twisted's name
        self.from_threads.put((f, args, kw))

    def addSystemEventTrigger(self, *args, **kw):  # noqa: N802 - Twisted's name
        return None

    def wait(self, d: defer.Deferred, timeout: float = 10.0):
        """Run queued thread callbacks until ``d`` fired; its result (or raise)."""
        box: list = []
        d.addBoth(box.append)
        while not box:
            f, args, kw = self.from_threads.get(timeout=timeout)
            f(*args, **kw)
        result = box[0]
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    def settle(self) -> None:
        """Run whatever the threads queued so far."""
        while True:
            try:
                f, args, kw = self.from_threads.get_nowait()
            except queue.Empty:
                return
            f(*args, **kw)


@pytest.fixture
def filedb(tmp_path):
    reactor = _Reactor()
    db = Database("sqlite:///" + str(tmp_path / "node.db"), reactor)
    reactor.wait(
        defer.ensureDeferred(
            db.run(lambda c: c.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")))
        )
    )
    yield db, reactor, str(tmp_path / "node.db")
    db.close()


def _write(db: Database, reactor: _Reactor, first: int, n: int, size: int = 4000) -> None:
    reactor.wait(
        defer.ensureDeferred(
            db.run(
                lambda c: c.execute(
                    text("INSERT INTO t (k, v) VALUES (:k, :v)"),
                    [{"k": first + i, "v": "x" * size} for i in range(n)],
                )
            )
        )
    )


def test_read_sees_committed_writes_on_its_own_thread_and_cannot_write(filedb) -> None:
    db, reactor, _ = filedb
    _write(db, reactor, 0, 3)

    def count(c):
        return threading.current_thread().name, c.execute(text("SELECT count(*) FROM t")).scalar()

    name, n = reactor.wait(defer.ensureDeferred(db.read(count)))
    assert n == 3 and "parta-db-read" in name
    _write(db, reactor, 3, 2)
    assert reactor.wait(defer.ensureDeferred(db.read(count)))[1] == 5
    with pytest.raises(Exception, match="readonly|read-only|query_only"):
        reactor.wait(
            defer.ensureDeferred(
                db.read(lambda c: c.execute(text("INSERT INTO t (k, v) VALUES (99, 'no')")))
            )
        )
    assert reactor.wait(defer.ensureDeferred(db.read(count)))[1] == 5


def test_writes_are_checkpointed_by_the_checkpointer_not_the_writer(filedb) -> None:
    db, reactor, path = filedb
    cp = db.checkpointer
    assert cp is not None
    assert (
        reactor.wait(
            defer.ensureDeferred(
                db.run(lambda c: c.execute(text("PRAGMA wal_autocheckpoint")).scalar())
            )
        )
        == BACKSTOP_PAGES
    )
    _write(db, reactor, 1000, 1)
    reactor.settle()
    reactor.advance(DEFAULT_INTERVAL_S)  # a first checkpoint: the file has the table
    _wait_for(lambda: cp.checkpoints >= 1, reactor)
    before = os.path.getsize(path)
    _write(db, reactor, 0, 200)  # ~800 KB: below the writer's backstop
    reactor.settle()
    assert os.path.getsize(path) == before  # the writer did not checkpoint
    assert os.path.getsize(path + "-wal") > 800_000
    done = cp.checkpoints
    reactor.advance(DEFAULT_INTERVAL_S)
    _wait_for(lambda: cp.checkpoints > done, reactor)
    assert os.path.getsize(path) > before + 800_000  # the pages reached the file
    assert cp.failures == 0
    # The data is in the database file: a fresh connection that ignores the WAL sees it.
    db.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 201
    finally:
        conn.close()


def test_reads_do_not_schedule_checkpoints(filedb) -> None:
    db, reactor, _ = filedb
    _write(db, reactor, 1000, 1)
    reactor.settle()
    reactor.advance(DEFAULT_INTERVAL_S)
    _wait_for(lambda: db.checkpointer.checkpoints >= 1, reactor)
    reactor.settle()
    assert not reactor.getDelayedCalls()
    reactor.wait(
        defer.ensureDeferred(db.run(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar()))
    )
    reactor.wait(
        defer.ensureDeferred(db.read(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar()))
    )
    reactor.settle()
    assert not reactor.getDelayedCalls()
    _write(db, reactor, 0, 1)
    reactor.settle()
    assert len(reactor.getDelayedCalls()) == 1


def test_in_memory_database_has_no_reader_or_checkpointer() -> None:
    reactor = _Reactor()
    db = Database("sqlite://", reactor)
    try:
        assert db.checkpointer is None and db.read_pool is None
        assert (
            reactor.wait(
                defer.ensureDeferred(db.read(lambda c: c.execute(text("SELECT 41 + 1")).scalar()))
            )
            == 42
        )
    finally:
        db.close()


def _wait_for(cond, reactor: _Reactor, timeout: float = 10.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        try:
            f, args, kw = reactor.from_threads.get(timeout=0.05)
        except queue.Empty:
            continue
        f(*args, **kw)
