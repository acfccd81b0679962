"""The persisted per-destination queue: batching limits, in-flight transactions, coalescing."""

from __future__ import annotations

from support.db import InlineDB, run

from node.federation.outbound import queue

DEST = "remote.test"


def test_pdus_batched_fifty_in_stream_order_and_inflight_is_stable():
    db = InlineDB()
    # queued out of order: the batch follows the stream order, not insertion order
    rows = [(DEST, so, f"$e{so}") for so in range(120, 0, -1)]
    assert run(db, queue.enqueue_pdus, rows) == 120
    b1 = run(db, queue.claim_batch, DEST, 1000)
    assert len(b1.event_ids) == 50 and b1.event_ids == [f"$e{i}" for i in range(1, 51)]
    assert not b1.resumed
    # not acknowledged: the same transaction (same ID, same events) again
    again = run(db, queue.claim_batch, DEST, 2000)
    assert (again.txn_id, again.event_ids, again.resumed) == (b1.txn_id, b1.event_ids, True)
    run(db, queue.complete_txn, DEST, b1.txn_id, 3000)
    b2 = run(db, queue.claim_batch, DEST, 4000)
    assert b2.txn_id != b1.txn_id and b2.event_ids == [f"$e{i}" for i in range(51, 101)]
    run(db, queue.complete_txn, DEST, b2.txn_id, 5000)
    b3 = run(db, queue.claim_batch, DEST, 6000)
    assert b3.event_ids == [f"$e{i}" for i in range(101, 121)]
    run(db, queue.complete_txn, DEST, b3.txn_id, 7000)
    assert run(db, queue.claim_batch, DEST, 8000) is None
    row = run(db, queue.destination_row, DEST)
    assert row["last_txn_id"] == b3.txn_id and row["inflight_txn_id"] is None


def test_duplicate_pdu_rows_are_ignored():
    db = InlineDB()
    assert run(db, queue.enqueue_pdus, [(DEST, 1, "$a"), (DEST, 1, "$a")]) == 1
    assert run(db, queue.enqueue_pdus, [(DEST, 1, "$a"), ("other.test", 1, "$a")]) == 1
    assert run(db, queue.queue_sizes, DEST) == (1, 0)


def test_edus_batched_hundred_with_pdus_alongside():
    db = InlineDB()
    run(db, queue.enqueue_edus, [(DEST, "m.receipt", {"n": i}, None) for i in range(250)])
    run(db, queue.enqueue_pdus, [(DEST, 1, "$only")])
    b = run(db, queue.claim_batch, DEST, 1)
    assert len(b.edus) == 100 and b.event_ids == ["$only"]
    assert [e["content"]["n"] for e in b.edus] == list(range(100))
    run(db, queue.complete_txn, DEST, b.txn_id, 2)
    b = run(db, queue.claim_batch, DEST, 3)
    assert len(b.edus) == 100 and b.event_ids == [] and b.edus[0]["content"]["n"] == 100


def test_typing_edus_coalesce_but_not_once_in_flight():
    db = InlineDB()
    key = "typing|!r|@a:x"
    run(db, queue.enqueue_edus, [(DEST, "m.typing", {"typing": True}, key)])
    run(db, queue.enqueue_edus, [(DEST, "m.typing", {"typing": False}, key)])
    assert run(db, queue.queue_sizes, DEST) == (0, 1)
    b = run(db, queue.claim_batch, DEST, 1)
    assert [e["content"] for e in b.edus] == [{"typing": False}]
    # a newer one while that transaction is in flight is kept for the next transaction
    run(db, queue.enqueue_edus, [(DEST, "m.typing", {"typing": True}, key)])
    assert run(db, queue.claim_batch, DEST, 2).edus == b.edus
    run(db, queue.complete_txn, DEST, b.txn_id, 3)
    assert [e["content"] for e in run(db, queue.claim_batch, DEST, 4).edus] == [{"typing": True}]


def test_position_and_retry_state_persist():
    from node.federation.outbound.backoff import RetryState

    db = InlineDB()
    assert run(db, queue.get_position) is None
    run(db, queue.enqueue_pdus, [(DEST, 7, "$x")], 7)
    assert run(db, queue.get_position) == 7
    run(db, queue.record_failure, DEST, RetryState(3, 4000, 99_000))
    states = run(db, queue.load_retry_states)
    assert states[DEST] == (RetryState(3, 4000, 99_000), True)
    assert run(db, queue.drop_destination, DEST) == 1
    assert run(db, queue.load_retry_states)[DEST][1] is False
