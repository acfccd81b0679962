"""Inbound ``/send`` transactions: the stored response (idempotency per ``(origin,
txnId)``) commits in the same database write as the transaction's events, a replay is
answered from it without processing, and a transaction whose events could not be stored
is not answered from a record on retry (it is processed again).

Spec: server-server API "Transactions" ("The sending server must wait and retry for a 200
OK response"; a retry has the same ``txnId``), ``transactions.yaml`` (a result per PDU).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sqlalchemy import func, select
from support.deferreds import result_of
from twisted.internet import defer

from inprocess_federation_support import two_nodes_in_a_room
from node.federation import store
from node.federation.ingest import STORE_FAILED
from schema.events import events
from schema.federation import federation_inbound_txns

WRITES = ("write_events", "_write_batch")


def _setup():
    return two_nodes_in_a_room()


class Recorder:
    """Wraps ``node.db.run``: records every call as (function name, detail); ``fail``
    decides per call whether it fails instead (a failed write: nothing committed)."""

    def __init__(self, node) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail = lambda name, args: False
        real = node.db.run

        def run(fn, *args, **kwargs):
            name = getattr(fn, "__name__", repr(fn))
            detail = None
            if name in WRITES:
                detail = {
                    "events": [ev.event_id for ev in args[0]],
                    "extras": [(x.fn.__name__, x.args[:2]) for x in args[1]]
                    if name == "_write_batch"
                    else [],
                }
            self.calls.append((name, detail))
            if self.fail(name, args):
                return defer.fail(RuntimeError("disk full"))
            return real(fn, *args, **kwargs)

        node.db.run = run

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def writes(self) -> list[dict]:
        return [d for n, d in self.calls if n in WRITES]


def _stored_response(node, origin, txn_id):
    return node.db.run_sync(lambda c: store.get_txn_response(c, origin, txn_id))


def _n_txn_rows(node):
    return node.db.run_sync(
        lambda c: c.execute(select(func.count()).select_from(federation_inbound_txns)).scalar()
    )


def _is_stored(node, event_id) -> bool:
    return (
        node.db.run_sync(
            lambda c: c.execute(
                select(events.c.event_id).where(events.c.event_id == event_id)
            ).first()
        )
        is not None
    )


def _chain(b, room_id, n, prefix="m"):
    """``n`` messages of bob built by b, each on top of the previous (not stored on b)."""
    out = []
    prev = None
    for i in range(n):
        ev = b.build(
            room_id,
            b.uid("bob"),
            "m.room.message",
            {"body": f"{prefix}{i}"},
            prev=None if prev is None else [prev.event_id],
            depth=None if prev is None else prev.depth + 1,
        )
        out.append(ev)
        prev = ev
    return out


# --- the response commits with the events ----------------------------------------------------


def test_response_is_stored_in_the_same_write_as_the_events():
    net, a, b, room_id = _setup()
    evs = _chain(b, room_id, 3)
    rec = Recorder(a)
    status, body = a.send_txn(b, [ev.pdu for ev in evs], txn_id="atomic-1")
    assert status == 200
    assert body == {"pdus": {ev.event_id: {} for ev in evs}}
    # One write carries the three events and the transaction's response.
    [write] = rec.writes()
    assert write["events"] == [ev.event_id for ev in evs]
    assert write["extras"] == [("save_txn_response", ("b.test", "atomic-1"))]
    # Nothing stored the response separately, and one look-up ran before processing.
    assert "save_txn_response" not in rec.names()
    assert rec.names().count("txn_response_and_event_status") == 1
    assert "get_txn_response" not in rec.names()
    # Both are in the database afterwards.
    assert all(_is_stored(a, ev.event_id) for ev in evs)
    assert _stored_response(a, "b.test", "atomic-1") == body
    assert evs[-1].event_id in a.visible_ids(room_id)


def test_transaction_with_only_edus_still_records_its_response():
    net, a, b, room_id = _setup()
    typing = {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": b.uid("bob"), "typing": True},
    }
    status, body = a.send_txn(b, [], [typing], txn_id="edu-only")
    assert (status, body) == (200, {"pdus": {}})
    assert _stored_response(a, "b.test", "edu-only") == {"pdus": {}}
    assert a.sync.typing.typing_users(room_id) == [b.uid("bob")]


def test_dropped_pdu_results_are_part_of_the_stored_response():
    net, a, b, room_id = _setup()
    (good,) = _chain(b, room_id, 1)
    forged = dict(good.pdu)
    forged["origin_server_ts"] = good.pdu["origin_server_ts"] + 1  # signed field
    from federation.events.model import Event

    forged_id = Event(forged, a.room(room_id).room_version).event_id
    status, body = a.send_txn(b, [good.pdu, forged], txn_id="mixed")
    assert status == 200
    assert body["pdus"][good.event_id] == {}
    assert "Signature" in body["pdus"][forged_id]["error"]
    assert _stored_response(a, "b.test", "mixed") == body
    assert not _is_stored(a, forged_id)


def test_many_pdus_with_a_forged_one_in_a_later_verification_chunk():
    """More PDUs than one verification chunk (8): each still gets its own verdict."""
    net, a, b, room_id = _setup()
    evs = _chain(b, room_id, 11)
    pdus = [dict(ev.pdu) for ev in evs]
    sig = pdus[9]["signatures"]["b.test"]
    key_id = next(iter(sig))
    pdus[9]["signatures"] = {"b.test": {key_id: sig[key_id][:-4] + "AAAA"}}
    status, body = a.send_txn(b, pdus, txn_id="chunks")
    assert status == 200
    results = body["pdus"]
    assert set(results) == {ev.event_id for ev in evs}
    assert "Signature" in results[evs[9].event_id]["error"]
    # Everything before it is accepted; the one built on the forged event cannot be
    # fetched from b (b never stored it) but still gets a result.
    assert all(results[ev.event_id] == {} for ev in evs[:9])
    assert all(_is_stored(a, ev.event_id) for ev in evs[:9])
    assert not _is_stored(a, evs[9].event_id)


# --- replays ---------------------------------------------------------------------------------


def test_replay_is_answered_from_the_record_without_processing():
    net, a, b, room_id = _setup()
    evs = _chain(b, room_id, 2)
    first = a.send_txn(b, [ev.pdu for ev in evs], txn_id="again")
    assert first[0] == 200
    n_events = a.db.run_sync(lambda c: c.execute(select(func.count()).select_from(events)).scalar())
    n_txns = _n_txn_rows(a)
    replayed = a.fed.transactions.replayed

    def must_not_run(*args, **kwargs):
        raise AssertionError("a replay must not be processed again")

    a.fed.ingest.process_prepared = must_not_run
    rec = Recorder(a)
    again = a.send_txn(b, [ev.pdu for ev in evs], txn_id="again")
    assert again == first
    assert a.fed.transactions.replayed == replayed + 1
    assert rec.writes() == []
    assert "save_txn_response" not in rec.names()
    assert (
        a.db.run_sync(lambda c: c.execute(select(func.count()).select_from(events)).scalar())
        == n_events
    )
    assert _n_txn_rows(a) == n_txns


def test_replay_with_other_content_gets_the_first_answer():
    """The transaction ID names the transaction: a retry is not re-read (and a changed
    body under the same ID is not processed)."""
    net, a, b, room_id = _setup()
    (ev1,) = _chain(b, room_id, 1, prefix="first")
    first = a.send_txn(b, [ev1.pdu], txn_id="same-id")
    (ev2,) = _chain(b, room_id, 1, prefix="second")
    again = a.send_txn(b, [ev2.pdu], txn_id="same-id")
    assert again == first
    assert not _is_stored(a, ev2.event_id)


# --- failed writes are not recorded ----------------------------------------------------------


def test_failed_event_write_is_not_recorded_and_the_retry_is_processed():
    net, a, b, room_id = _setup()
    evs = _chain(b, room_id, 2)
    rec = Recorder(a)
    failed: list = []

    def fail_writes_of_the_first(name, args):
        # The persister retries a failed write in parts: every write holding the
        # transaction's first event fails (the second builds on it: not written either).
        if name in WRITES and any(ev.event_id == evs[0].event_id for ev in args[0]):
            failed.append(name)
            return True
        return False

    rec.fail = fail_writes_of_the_first
    status, body = a.send_txn(b, [ev.pdu for ev in evs], txn_id="retry-me")
    assert status == 200
    assert body == {"pdus": {ev.event_id: {"error": STORE_FAILED} for ev in evs}}
    assert failed[0] == "_write_batch"  # the events and the response together
    rec.fail = lambda name, args: False
    assert _stored_response(a, "b.test", "retry-me") is None
    assert not any(_is_stored(a, ev.event_id) for ev in evs)
    # The sender retries the same transaction: processed again, now stored.
    processed = a.fed.transactions.processed
    status, body = a.send_txn(b, [ev.pdu for ev in evs], txn_id="retry-me")
    assert (status, body) == (200, {"pdus": {ev.event_id: {} for ev in evs}})
    assert a.fed.transactions.processed == processed + 1
    assert all(_is_stored(a, ev.event_id) for ev in evs)
    assert evs[-1].event_id in a.visible_ids(room_id)
    assert _stored_response(a, "b.test", "retry-me") == body


def test_event_written_before_the_response_failing_removes_the_record():
    """A missing prev event is fetched during the transaction and written at once (a
    flush under the transaction's hold), taking the PDUs queued so far with it.  When
    THAT write fails, the response (written later, successfully) must not answer the
    retry."""
    net, a, b, room_id = _setup()
    # b stores m0, m1, m2; a is sent m0 and m2 only: m1 is fetched from b.
    sent = [
        result_of(b.rooms.send_event(b.uid("bob"), room_id, "m.room.message", {"body": f"s{i}"}))
        for i in range(3)
    ]
    m0, m1, m2 = sent
    rec = Recorder(a)
    failed: list = []

    def fail_write_of_m0(name, args):
        # Every write holding m0 (the persister retries a failed write in parts).
        if name in WRITES and any(ev.event_id == m0 for ev in args[0]):
            failed.append([ev.event_id for ev in args[0]])
            return True
        return False

    rec.fail = fail_write_of_m0
    status, body = a.send_txn(b, [b.pdu(m0), b.pdu(m2)], txn_id="gap-fail")
    assert status == 200
    assert failed and m0 in failed[0]
    assert body["pdus"][m0] == {"error": STORE_FAILED}
    assert not _is_stored(a, m0)
    assert _stored_response(a, "b.test", "gap-fail") is None
    # The retry is processed again and everything ends up stored.
    rec.fail = lambda name, args: False
    status, body = a.send_txn(b, [b.pdu(m0), b.pdu(m2)], txn_id="gap-fail")
    assert status == 200 and body["pdus"] == {m0: {}, m2: {}}
    assert all(_is_stored(a, e) for e in sent)
    assert set(sent) <= set(a.visible_ids(room_id))
    assert _stored_response(a, "b.test", "gap-fail") == body


def test_failed_response_write_alone_leaves_no_record_and_events_are_kept():
    """A transaction whose PDUs were all already known writes only its response; if
    that write fails the retry is processed again (and finds nothing new to do)."""
    net, a, b, room_id = _setup()
    (ev,) = _chain(b, room_id, 1)
    assert a.send_txn(b, [ev.pdu], txn_id="first")[0] == 200
    rec = Recorder(a)
    rec.fail = lambda name, args: name == "_write_batch"
    status, body = a.send_txn(b, [ev.pdu], txn_id="second")
    assert (status, body) == (200, {"pdus": {ev.event_id: {}}})
    assert [w["events"] for w in rec.writes()] == [[]]  # the response only
    assert _stored_response(a, "b.test", "second") is None
    rec.fail = lambda name, args: False
    assert a.send_txn(b, [ev.pdu], txn_id="second") == (200, {"pdus": {ev.event_id: {}}})
    assert _stored_response(a, "b.test", "second") == {"pdus": {ev.event_id: {}}}
    assert _is_stored(a, ev.event_id)


def test_pdus_depending_on_earlier_pdus_of_the_same_transaction_commit_together():
    """A join and the joiner's first message in one transaction: the message is
    authorised by the join, which is still only queued (held) when it is checked."""
    net, a, b, room_id = _setup()
    carol = b.uid("carol")
    join = b.build(room_id, carol, "m.room.member", {"membership": "join"}, state_key=carol)
    state = dict(b.room(room_id).state)
    state[("m.room.member", carol)] = join
    msg = b.build(
        room_id,
        carol,
        "m.room.message",
        {"body": "hi, I'm new"},
        prev=[join.event_id],
        depth=join.depth + 1,
        state=state,
    )
    assert join.event_id in msg.auth_event_ids
    rec = Recorder(a)
    status, body = a.send_txn(b, [msg.pdu, join.pdu], txn_id="join-and-speak")
    assert (status, body) == (200, {"pdus": {join.event_id: {}, msg.event_id: {}}})
    [write] = rec.writes()
    assert write["events"] == [join.event_id, msg.event_id]  # depth order
    assert write["extras"] == [("save_txn_response", ("b.test", "join-and-speak"))]
    assert a.room(room_id).membership(carol) == "join"
    assert a.visible_ids(room_id)[-2:] == [join.event_id, msg.event_id]
