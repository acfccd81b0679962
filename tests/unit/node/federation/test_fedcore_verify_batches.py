"""Step 2 of the checks on receipt (signatures) for ``/send`` transactions: a transaction
of one or two PDUs is verified on the reactor thread (a hand-over to the verifier's
threads would cost more than the verification), larger ones go to the verifier in chunks
of ``VERIFY_CHUNK``; either way a forged signature drops exactly that PDU.

Spec: server-server API "Checks performed on receipt of a PDU" (2. "Passes signature
checks, otherwise it is dropped"), "Transactions" (a result per PDU).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from inprocess_federation_support import two_nodes_in_a_room
from node.federation.ingest.checks import INLINE_VERIFY_MAX, VERIFY_CHUNK


class CountingVerifier:
    """The node's verifier, counting the batches handed to it."""

    def __init__(self, inner):
        self.inner = inner
        self.batches: list[int] = []

    def verify(self, batch):
        return self.submit(batch).deferred

    def submit(self, batch):
        self.batches.append(len(batch))
        return self.inner.submit(batch)


def _setup():
    _, a, b, room_id = two_nodes_in_a_room()
    counting = CountingVerifier(a.fed.ingest.checks.verifier)
    a.fed.ingest.checks.verifier = counting
    return a, b, room_id, counting


def _chain(b, room_id, n, *, forge=()):
    room = b.room(room_id)
    prev, depth, pdus = list(room.extremities), room.depth, []
    for i in range(n):
        ev = b.build(
            room_id,
            b.uid("bob"),
            "m.room.message",
            {"msgtype": "m.text", "body": f"m{i}"},
            prev=prev,
            depth=depth + 1,
        )
        prev, depth = [ev.event_id], depth + 1
        pdu = dict(ev.pdu)
        if i in forge:  # a signature over other bytes: the content no longer matches
            sigs = pdu["signatures"][b.server_name]
            key_id = next(iter(sigs))
            pdu["signatures"] = {b.server_name: {key_id: "A" * 86}}
        pdus.append((ev.event_id, pdu))
    return pdus


def test_small_transactions_are_verified_without_the_verifier_threads():
    a, b, room_id, counting = _setup()
    pdus = _chain(b, room_id, INLINE_VERIFY_MAX)
    status, body = a.send_txn(b, [p for _, p in pdus], txn_id="small")
    assert status == 200 and body["pdus"] == {eid: {} for eid, _ in pdus}
    assert counting.batches == []


def test_a_forged_signature_in_a_small_transaction_drops_that_pdu_only():
    a, b, room_id, counting = _setup()
    pdus = _chain(b, room_id, 2, forge={1})
    status, body = a.send_txn(b, [p for _, p in pdus], txn_id="small-forged")
    assert status == 200
    assert body["pdus"][pdus[0][0]] == {}
    assert "Signature check failed" in body["pdus"][pdus[1][0]]["error"]
    assert counting.batches == []
    assert a.event(pdus[1][0]) is None


def test_larger_transactions_go_to_the_verifier_in_chunks():
    a, b, room_id, counting = _setup()
    n = 2 * VERIFY_CHUNK + 3
    pdus = _chain(b, room_id, n, forge={VERIFY_CHUNK + 1})
    status, body = a.send_txn(b, [p for _, p in pdus], txn_id="large")
    assert status == 200
    assert counting.batches == [VERIFY_CHUNK, VERIFY_CHUNK, 3]
    bad = pdus[VERIFY_CHUNK + 1][0]
    assert "Signature check failed" in body["pdus"][bad]["error"]
    # The PDUs before the forged one are accepted; the later ones build on a dropped event
    # (a missing prev event) but none of them is lost silently: each has a result.
    assert all(body["pdus"][eid] == {} for eid, _ in pdus[: VERIFY_CHUNK + 1])
    assert set(body["pdus"]) == {eid for eid, _ in pdus}
