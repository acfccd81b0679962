"""X-Matrix request authentication on the federation router, the key endpoints, and
``/send`` transactions: limits, idempotency per (origin, txnId), EDUs (typing, receipts)
delivered to local sync only when the origin owns the user and the user is joined."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import orjson
from sqlalchemy import func, select
from support.deferreds import result_of

from federation.keys import SigningKey
from federation.signing import verify_json
from federation.transport.key_server import OldKey
from federation.transport.xmatrix import sign_request
from inprocess_federation_support import FedNode, Network, dispatch, forward, two_nodes_in_a_room
from schema.events import events
from schema.sync import receipts

SEND = "/_matrix/federation/v1/send/"


def _setup():
    return two_nodes_in_a_room()


def _count(node, table, *where):
    return node.db.run_sync(
        lambda c: c.execute(select(func.count()).select_from(table).where(*where)).scalar()
    )


# --- X-Matrix ----------------------------------------------------------------------------


def _send_signed(a, origin, key, body, *, destination="a.test", target=SEND + "x1", sent_body=None):
    auth = sign_request("PUT", target, origin, destination, key, body)
    raw = orjson.dumps(sent_body if sent_body is not None else body)
    return dispatch(a, "PUT", target, raw, {"authorization": [auth]})


def test_unsigned_request_is_401_m_unauthorized():
    net, a, b, room_id = _setup()
    status, body = dispatch(a, "PUT", SEND + "x1", b'{"pdus": []}', {})
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")
    status, body = dispatch(
        a, "GET", "/_matrix/federation/v1/event/$x", b"", {"authorization": ["Bearer abc"]}
    )
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")


def test_mis_signed_requests_are_401():
    net, a, b, room_id = _setup()
    body = {"pdus": []}
    # the right key signs: accepted
    assert _send_signed(a, "b.test", b.key, body)[0] == 200
    # a different key under b's key ID
    impostor = SigningKey(b.key.version, b"\x07" * 32)
    status, out = _send_signed(a, "b.test", impostor, body, target=SEND + "x2")
    assert (status, out["errcode"]) == (401, "M_UNAUTHORIZED")
    # body altered after signing
    status, out = _send_signed(
        a, "b.test", b.key, body, target=SEND + "x3", sent_body={"pdus": [], "edus": []}
    )
    assert (status, out["errcode"]) == (401, "M_UNAUTHORIZED")
    # signed for another destination
    status, out = _send_signed(a, "b.test", b.key, body, destination="c.test", target=SEND + "x4")
    assert (status, out["errcode"]) == (401, "M_UNAUTHORIZED")
    # signed for another path than requested
    auth = sign_request("PUT", SEND + "other", "b.test", "a.test", b.key, body)
    status, out = dispatch(a, "PUT", SEND + "x5", orjson.dumps(body), {"authorization": [auth]})
    assert (status, out["errcode"]) == (401, "M_UNAUTHORIZED")
    # an unknown key ID of a known server
    other = SigningKey.generate("unknown")
    status, out = _send_signed(a, "b.test", other, body, target=SEND + "x6")
    assert (status, out["errcode"]) == (401, "M_UNAUTHORIZED")


def test_key_endpoints_are_public_signed_and_list_old_keys():
    net = Network()
    a = FedNode(net, "a.test")
    status, keys = dispatch(a, "GET", "/_matrix/key/v2/server", b"", {})
    assert status == 200 and keys["server_name"] == "a.test"
    assert set(keys["verify_keys"]) == {a.key.key_id}
    verify_json(keys, "a.test", a.key.verify_key)
    assert keys["valid_until_ts"] > a.clock.time_ms()
    # After a rotation the old key is published as an old verify key.
    old = SigningKey.generate("old")
    a.fed.fctx.key_server.set_keys([a.key], [OldKey(old.verify_key, 12345)])
    status, keys = dispatch(a, "GET", "/_matrix/key/v2/server", b"", {})
    assert keys["old_verify_keys"] == {
        old.key_id: {"key": old.verify_key.encode(), "expired_ts": 12345}
    }
    verify_json(keys, "a.test", a.key.verify_key)
    status, version = dispatch(a, "GET", "/_matrix/federation/v1/version", b"", {})
    assert status == 200 and version["server"]["name"] == "Parta"


def test_notary_query_returns_other_servers_keys_signed_by_us():
    net, a, b, room_id = _setup()
    body = orjson.dumps({"server_keys": {"b.test": {}}})
    status, out = dispatch(a, "POST", "/_matrix/key/v2/query", body, {})
    assert status == 200
    [entry] = out["server_keys"]
    assert entry["server_name"] == "b.test"
    verify_json(entry, "b.test", b.key.verify_key)
    verify_json(entry, "a.test", a.key.verify_key)


# --- transactions ------------------------------------------------------------------------


def test_transaction_limits():
    net, a, b, room_id = _setup()
    status, out = a.send_txn(b, [{}] * 51, txn_id="big")
    assert (status, out["errcode"]) == (400, "M_BAD_JSON")
    status, out = a.send_txn(b, [], [{"edu_type": "m.typing", "content": {}}] * 101, txn_id="big2")
    assert (status, out["errcode"]) == (400, "M_BAD_JSON")


def test_replayed_transaction_gets_the_same_answer_and_persists_nothing_twice():
    net, a, b, room_id = _setup()
    m1 = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "x"}))
    forward(a, b, [m1], "pre")
    ev = b.build(room_id, b.uid("bob"), "m.room.message", {"body": "once"})
    receipt = {
        "edu_type": "m.receipt",
        "content": {room_id: {"m.read": {b.uid("bob"): {"event_ids": [m1], "data": {"ts": 1}}}}},
    }
    first = a.send_txn(b, [ev.pdu], [receipt], txn_id="dup")
    assert first == (200, {"pdus": {ev.event_id: {}}})
    n_events = _count(a, events)
    n_receipts = _count(a, receipts)
    receipt_stream = a.sync.receipts
    assert n_receipts == 1
    again = a.send_txn(b, [ev.pdu], [receipt], txn_id="dup")
    assert again == first
    assert _count(a, events) == n_events
    assert _count(a, receipts) == n_receipts
    assert a.fed.transactions.replayed == 1
    # the same transaction ID from another origin is a different transaction
    c = FedNode(net, "c.test")
    other = a.send_txn(c, [], txn_id="dup")
    assert other == (200, {"pdus": {}})
    assert receipt_stream is a.sync.receipts


def test_typing_edu_reaches_local_sync_only_for_joined_users_of_the_origin():
    net, a, b, room_id = _setup()
    typing = {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": b.uid("bob"), "typing": True},
    }
    assert a.send_txn(b, [], [typing], txn_id="ty1")[0] == 200
    assert a.sync.typing.typing_users(room_id) == [b.uid("bob")]
    # b may not speak for a user of another server, nor for one not in the room
    spoof = {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": "@eve:c.test", "typing": True},
    }
    absent = {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": b.uid("nobody"), "typing": True},
    }
    presence = {"edu_type": "m.presence", "content": {"push": []}}
    assert a.send_txn(b, [], [spoof, absent, presence], txn_id="ty2")[0] == 200
    assert a.sync.typing.typing_users(room_id) == [b.uid("bob")]
    stop = {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": b.uid("bob"), "typing": False},
    }
    a.send_txn(b, [], [stop], txn_id="ty3")
    assert a.sync.typing.typing_users(room_id) == []


def test_receipt_edu_for_unknown_event_or_foreign_user_is_ignored():
    net, a, b, room_id = _setup()
    bad = {
        "edu_type": "m.receipt",
        "content": {
            room_id: {
                "m.read": {
                    b.uid("bob"): {"event_ids": ["$unknown"], "data": {"ts": 1}},
                    "@eve:c.test": {"event_ids": [a.room(room_id).extremities[0]], "data": {}},
                }
            }
        },
    }
    assert a.send_txn(b, [], [bad], txn_id="r1")[0] == 200
    assert _count(a, receipts) == 0
