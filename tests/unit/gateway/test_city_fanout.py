"""The fan-out of one city announcement to many schools: the outbound queue queues, claims
and completes transactions for many destinations at once (``enqueue_pdus``,
``claim_batches`` / ``complete_txns``: same batches as one by one, statements independent
of the number of destinations), and the transaction sender coalesces the database work of all its
destination loops, so N destinations cost a handful of database transactions, not 2N."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import event
from support.db import InlineDB, run
from support.deferreds import result_of
from twisted.internet import defer, task

import schema.events  # registers the tables
import schema.federation_outbound  # noqa: F401 - registers the tables
from node.clock import ReactorClock
from node.federation.outbound import queue
from node.federation.outbound.transaction_sender import TransactionSender


def count_statements(db):
    seen = []
    event.listen(db.engine, "before_cursor_execute", lambda *a, **kw: seen.append(a[2]))
    return seen


def test_claim_batches_gives_what_claim_batch_gives_one_by_one():
    db = InlineDB()
    run(
        db,
        queue.enqueue_pdus,
        [("a.test", so, f"$a{so}") for so in range(120, 0, -1)]
        + [("b.test", 7, "$b7"), ("e.test", 1, "$e1"), ("e.test", 2, "$e2")],
    )
    run(db, queue.enqueue_edus, [("a.test", "m.typing", {"n": i}, None) for i in range(3)])
    inflight = run(db, queue.claim_batch, "e.test", 500)  # e.g. failed earlier
    run(db, queue.enqueue_pdus, [("e.test", 3, "$e3")])
    got = run(db, queue.claim_batches, ["a.test", "b.test", "c.test", "e.test"], 1000)
    a, b, e = got["a.test"], got["b.test"], got["e.test"]
    assert a.event_ids == [f"$a{i}" for i in range(1, 51)] and not a.resumed
    assert [x["content"] for x in a.edus] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert b.event_ids == ["$b7"] and b.edus == []
    assert got["c.test"] is None  # never queued
    assert (e.txn_id, e.event_ids, e.resumed) == (inflight.txn_id, ["$e1", "$e2"], True)
    # Not acknowledged: the same transactions again (as claim_batch would say).
    again = run(db, queue.claim_batch, "a.test", 2000)
    assert (again.txn_id, again.event_ids, again.resumed) == (a.txn_id, a.event_ids, True)
    run(db, queue.complete_txns, [("a.test", a.txn_id), ("b.test", b.txn_id)], 3000)
    nxt = run(db, queue.claim_batches, ["a.test", "b.test"], 4000)
    assert nxt["a.test"].event_ids == [f"$a{i}" for i in range(51, 101)]
    assert nxt["a.test"].edus == [] and nxt["b.test"] is None
    assert nxt["a.test"].txn_id not in (a.txn_id, again.txn_id)
    row = run(db, queue.destination_row, "b.test")
    assert (row["last_txn_id"], row["inflight_txn_id"], row["last_success_ts"]) == (
        b.txn_id,
        None,
        3000,
    )
    assert run(db, queue.queue_sizes, "b.test") == (0, 0)
    assert run(db, queue.queue_sizes, "a.test") == (70, 0)


def test_statements_do_not_grow_with_the_number_of_destinations():
    counts = {}
    for n in (10, 200):
        db = InlineDB()
        names = [f"s{i:03d}.test" for i in range(n)]
        seen = count_statements(db)
        assert run(db, queue.enqueue_pdus, [(d, 5, "$news") for d in names]) == n
        assert run(db, queue.enqueue_pdus, [(d, 5, "$news") for d in names[:3]]) == 0
        got = run(db, queue.claim_batches, names, 1000)
        run(db, queue.complete_txns, [(d, got[d].txn_id) for d in names], 2000)
        counts[n] = len(seen)
        assert all(got[d].event_ids == ["$news"] for d in names)
        assert all(run(db, queue.queue_sizes, d) == (0, 0) for d in names[:3])
    # enqueue: known destinations, new ones, what is queued, the rows (again: only the
    # two look-ups); claim: destinations, two window queries, two executemany updates;
    # complete: three executemany statements
    assert counts[10] == counts[200] == 4 + 2 + 5 + 3


class SlowDB(InlineDB):
    """``run`` completes only when the test pumps it (like a busy database thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list = []
        self.calls: list[str] = []

    def run(self, fn, *args, **kw):
        self.calls.append(fn.__name__)
        d = defer.Deferred()
        self.waiting.append((d, fn, args, kw))
        return d

    def pump(self) -> None:
        while self.waiting:
            d, fn, args, kw = self.waiting.pop(0)
            try:
                with self.engine.begin() as conn:
                    result = fn(conn, *args, **kw)
            except Exception:  # noqa: BLE001 - handed on to the waiting Deferred
                d.errback()
            else:
                d.callback(result)


class Client:
    def __init__(self) -> None:
        self.sent: dict[str, list] = {}

    async def request(self, destination, method, path, json_body=None, query=None, timeout=None):
        self.sent.setdefault(destination, []).append(
            [p["content"]["body"] for p in json_body["pdus"]]
        )
        return 200, {"pdus": {}}


def test_one_event_to_two_hundred_servers_takes_a_handful_of_database_calls():
    db = SlowDB()
    reactor = task.Clock()
    reactor.advance(1_700_000_000)
    client = Client()
    news = SimpleNamespace(pdu={"type": "m.room.message", "content": {"body": "news"}})

    async def get_events(ids):
        return {i: news for i in ids}

    sender = TransactionSender(
        db=db,
        clock=ReactorClock(reactor),
        client=client,
        server_name="city.test",
        policy=SimpleNamespace(allow_outbound=lambda d: True),
        get_events=get_events,
    )
    names = [f"s{i:03d}.test" for i in range(200)]
    with db.engine.begin() as conn:
        queue.enqueue_pdus(conn, [(d, 5, "$news") for d in names])
    for d in names:
        sender.wake(d)
    db.pump()
    assert sorted(client.sent) == names
    assert all(client.sent[d] == [["news"]] for d in names)
    assert sender.sent_transactions == 200 and sender.is_idle()
    # 2 x 200 database transactions one by one; coalesced: a few claims and completions.
    assert len(db.calls) <= 8, db.calls
    assert all(result_of(InlineDB.run(db, queue.queue_sizes, d)) == (0, 0) for d in names[:5])
