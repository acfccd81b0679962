"""Server ACLs between in-process nodes (server-server API "Server Access Control Lists
(ACLs)"): a room on a.test whose ``m.room.server_acl`` denies c.test -- c's PDUs are refused
per PDU and not stored, its typing and receipts ignored, the protected endpoints answer it
403 ``M_FORBIDDEN``; b.test keeps working; changing the ACL takes effect at once."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sqlalchemy import func, select
from support.deferreds import result_of

from federation.events.model import Event
from federation.room_versions import V12
from inprocess_federation_support import FedNode, Network, forward, join_remote
from node.federation import acl_check
from node.federation.membership.wiring import wire as wire_membership
from schema.sync import receipts

V1 = "/_matrix/federation/v1"
V2 = "/_matrix/federation/v2"
ACL = "m.room.server_acl"
DENY_C = {"allow": ["*"], "deny": ["c.test"]}


def _setup():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    c = FedNode(net, "c.test")
    # the membership endpoints (make_join, ...) on a, as a federating node has them
    wire_membership(a.fed.fctx, rooms=a.rooms, accounts=a.accounts)
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, b, room_id)
    join_remote(a, c, room_id)
    return net, a, b, c, room_id


def _set_acl(a, room_id, content) -> str:
    return result_of(a.rooms.send_event(a.uid("alice"), room_id, ACL, content, ""))


def _message(resident, author, room_id, body):
    """A message by ``author``'s bob, built on ``resident``'s view of the room."""
    return resident.build(
        room_id,
        author.uid("bob"),
        "m.room.message",
        {"body": body},
        key=author.key,
        server_name=author.server_name,
    )


def _refused(receiver, sender, ev, txn_id) -> str:
    """``sender`` sends ``ev`` to ``receiver`` in a transaction: its per-PDU error (the
    transaction itself is answered 200); the event is not stored."""
    status, body = receiver.send_txn(sender, [ev.pdu], txn_id=txn_id)
    assert status == 200
    error = body["pdus"][ev.event_id]["error"]
    assert receiver.event(ev.event_id) is None
    return error


def _req(src, dst, method, path, body=None, query=None):
    return result_of(src.client.request(dst.server_name, method, path, body, query))


def _receipt_rows(node, user_id):
    return node.db.run_sync(
        lambda conn: conn.execute(
            select(func.count()).select_from(receipts).where(receipts.c.user_id == user_id)
        ).scalar()
    )


# --- /send: PDUs -------------------------------------------------------------------------


def test_pdus_from_a_denied_server_are_refused_and_not_stored():
    net, a, b, c, room_id = _setup()
    _set_acl(a, room_id, DENY_C)
    bad = _message(a, c, room_id, "from c")
    assert "server ACL" in _refused(a, c, bad, "c1")
    assert bad.event_id not in a.room(room_id).extremities
    # an allowed server's PDU in the same room is accepted
    good = _message(a, b, room_id, "from b")
    assert a.send_txn(b, [good.pdu], txn_id="b1") == (200, {"pdus": {good.event_id: {}}})
    assert a.event(good.event_id) is not None
    assert a.fed.ingest.stats["dropped"] == 1


def test_a_denied_server_with_a_port_is_refused_too():
    net = Network()
    a = FedNode(net, "a.test")
    c = FedNode(net, "c.test:8448")
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, c, room_id)
    _set_acl(a, room_id, {"allow": ["*"], "deny": ["C.TEST"]})
    bad = _message(a, c, room_id, "from c")
    _refused(a, c, bad, "c1")


def test_changing_the_acl_takes_effect():
    net, a, b, c, room_id = _setup()
    _set_acl(a, room_id, DENY_C)
    first = _message(a, c, room_id, "denied")
    _, body = a.send_txn(c, [first.pdu], txn_id="c1")
    assert "error" in body["pdus"][first.event_id]
    _set_acl(a, room_id, {"allow": ["*"]})
    second = _message(a, c, room_id, "allowed again")
    assert a.send_txn(c, [second.pdu], txn_id="c2") == (200, {"pdus": {second.event_id: {}}})
    # and now an allow list without b: b is denied, c allowed
    _set_acl(a, room_id, {"allow": ["a.test", "c.test"]})
    from_b = _message(a, b, room_id, "b now denied")
    _refused(a, b, from_b, "b1")


def test_an_acl_received_over_federation_is_enforced_by_the_receiving_node():
    net, a, b, c, room_id = _setup()
    acl_id = _set_acl(a, room_id, DENY_C)
    assert forward(a, b, [acl_id], "acl") == {acl_id: {}}
    assert b.room(room_id).get(ACL).event_id == acl_id
    bad = _message(b, c, room_id, "to b")
    assert "server ACL" in _refused(b, c, bad, "c1")


def test_acls_judge_the_sending_server_not_the_events_author():
    # "Server ACLs do not restrict the events relative to the room DAG via authorisation
    # rules, but instead act purely at the network layer": c's event, relayed by the
    # allowed b (as get_missing_events or backfill would), is accepted.
    net, a, b, c, room_id = _setup()
    older = _message(a, c, room_id, "written before the ACL")
    _set_acl(a, room_id, DENY_C)
    assert a.send_txn(b, [older.pdu], txn_id="relay") == (200, {"pdus": {older.event_id: {}}})
    assert a.event(older.event_id) is not None


# --- /send: EDUs -------------------------------------------------------------------------


def _typing(node, room_id):
    return {
        "edu_type": "m.typing",
        "content": {"room_id": room_id, "user_id": node.uid("bob"), "typing": True},
    }


def _receipt(node, room_id, event_id):
    return {
        "edu_type": "m.receipt",
        "content": {
            room_id: {"m.read": {node.uid("bob"): {"event_ids": [event_id], "data": {"ts": 1}}}}
        },
    }


def test_typing_and_receipts_from_a_denied_server_are_ignored():
    net, a, b, c, room_id = _setup()
    acl_id = _set_acl(a, room_id, DENY_C)
    assert (
        a.send_txn(c, [], [_typing(c, room_id), _receipt(c, room_id, acl_id)], txn_id="c1")[0]
        == 200
    )
    assert a.sync.typing.typing_users(room_id) == []
    assert _receipt_rows(a, c.uid("bob")) == 0
    assert (
        a.send_txn(b, [], [_typing(b, room_id), _receipt(b, room_id, acl_id)], txn_id="b1")[0]
        == 200
    )
    assert a.sync.typing.typing_users(room_id) == [b.uid("bob")]
    assert _receipt_rows(a, b.uid("bob")) == 1
    # lifted: c's EDUs count again
    _set_acl(a, room_id, {"allow": ["*"]})
    a.send_txn(c, [], [_typing(c, room_id), _receipt(c, room_id, acl_id)], txn_id="c2")
    assert sorted(a.sync.typing.typing_users(room_id)) == [b.uid("bob"), c.uid("bob")]
    assert _receipt_rows(a, c.uid("bob")) == 1


def test_receipts_of_other_rooms_in_the_same_edu_still_count():
    net, a, b, c, room_id = _setup()
    other = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, c, other, user="alice")
    acl_id = _set_acl(a, room_id, DENY_C)
    m = result_of(a.rooms.send_event(a.uid("alice"), other, "m.room.message", {"body": "x"}))
    edu = {
        "edu_type": "m.receipt",
        "content": {
            room_id: {"m.read": {c.uid("bob"): {"event_ids": [acl_id], "data": {}}}},
            other: {"m.read": {c.uid("alice"): {"event_ids": [m], "data": {}}}},
        },
    }
    assert a.send_txn(c, [], [edu], txn_id="c1")[0] == 200
    rows = a.db.run_sync(
        lambda conn: [
            tuple(r) for r in conn.execute(select(receipts.c.room_id, receipts.c.user_id))
        ]
    )
    assert rows == [(other, c.uid("alice"))]


# --- the protected endpoints -------------------------------------------------------------


def _protected_requests(a, room_id, origin):
    """Every endpoint of the spec's list that a.test serves, as (method, path, body,
    query) for a request from ``origin``."""
    rid = quote(room_id)
    some = a.room(room_id).extremities[0]
    user = quote(f"@alice:{origin.server_name}")
    eid = quote("$whatever")
    return [
        ("GET", f"{V1}/make_join/{rid}/{user}", None, {"ver": [V12.identifier]}),
        ("GET", f"{V1}/make_leave/{rid}/{quote(origin.uid('bob'))}", None, None),
        ("GET", f"{V1}/make_knock/{rid}/{user}", None, {"ver": [V12.identifier]}),
        ("PUT", f"{V2}/send_join/{rid}/{eid}", {}, None),
        ("PUT", f"{V2}/send_leave/{rid}/{eid}", {}, None),
        ("PUT", f"{V1}/send_knock/{rid}/{eid}", {}, None),
        ("PUT", f"{V2}/invite/{rid}/{eid}", {}, None),
        ("GET", f"{V1}/state/{rid}", None, {"event_id": some}),
        ("GET", f"{V1}/state_ids/{rid}", None, {"event_id": some}),
        ("GET", f"{V1}/backfill/{rid}", None, {"v": [some], "limit": 5}),
        ("GET", f"{V1}/event_auth/{rid}/{quote(some)}", None, None),
        (
            "POST",
            f"{V1}/get_missing_events/{rid}",
            {"earliest_events": [], "latest_events": [some]},
            None,
        ),
        ("GET", f"{V1}/event/{quote(some)}", None, None),
    ]


def test_every_protected_endpoint_answers_403_to_a_denied_server():
    net, a, b, c, room_id = _setup()
    _set_acl(a, room_id, DENY_C)
    for method, path, body, query in _protected_requests(a, room_id, c):
        status, out = _req(c, a, method, path, body, query)
        assert (status, out.get("errcode")) == (403, "M_FORBIDDEN"), path
        assert "server ACL" in out["error"], path


def test_protected_endpoints_still_serve_an_allowed_server():
    net, a, b, c, room_id = _setup()
    _set_acl(a, room_id, DENY_C)
    some = a.room(room_id).extremities[0]
    reads = [
        ("GET", f"{V1}/state_ids/{quote(room_id)}", None, {"event_id": some}),
        ("GET", f"{V1}/event/{quote(some)}", None, None),
        (
            "GET",
            f"{V1}/make_join/{quote(room_id)}/{quote(b.uid('alice'))}",
            None,
            {"ver": [V12.identifier]},
        ),
    ]
    for method, path, body, query in reads:
        assert _req(b, a, method, path, body, query)[0] == 200, path
    # the ACL judges the origin; the user in the path is b's own user
    status, out = _req(
        c,
        a,
        "GET",
        f"{V1}/make_join/{quote(room_id)}/{quote(c.uid('alice'))}",
        query={"ver": [V12.identifier]},
    )
    assert (status, out["errcode"]) == (403, "M_FORBIDDEN")


def test_make_join_is_allowed_again_once_the_acl_changes():
    net, a, b, c, room_id = _setup()
    path = f"{V1}/make_join/{quote(room_id)}/{quote(c.uid('alice'))}"
    query = {"ver": [V12.identifier]}
    assert _req(c, a, "GET", path, query=query)[0] == 200
    _set_acl(a, room_id, {"allow": ["*.test"], "deny": ["c.*"]})
    assert _req(c, a, "GET", path, query=query)[0] == 403
    _set_acl(a, room_id, {"allow": ["*.test"]})
    status, out = _req(c, a, "GET", path, query=query)
    assert status == 200 and out["event"]["type"] == "m.room.member"


def test_endpoints_of_an_unknown_room_are_not_refused_by_acls():
    net, a, b, c, room_id = _setup()
    _set_acl(a, room_id, DENY_C)
    status, out = _req(
        c,
        a,
        "GET",
        f"{V1}/make_join/{quote('!nope:a.test')}/{quote(c.uid('alice'))}",
        query={"ver": [V12.identifier]},
    )
    assert status == 404
    # and other rooms' ACLs do not leak: a room without one serves c
    other = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    status, _ = _req(
        c,
        a,
        "GET",
        f"{V1}/make_join/{quote(other)}/{quote(c.uid('alice'))}",
        query={"ver": [V12.identifier]},
    )
    assert status == 200


def test_every_protected_route_of_a_node_is_guarded():
    net, a, b, c, room_id = _setup()
    templates = [r.template for r in a.fed.fctx.router._routes]
    guarded = [t for t in templates if acl_check.protects(t)]
    names = {t.split("/")[4] for t in guarded}
    assert names == {
        "make_join",
        "make_leave",
        "make_knock",
        "send_join",
        "send_leave",
        "send_knock",
        "invite",
        "state",
        "state_ids",
        "backfill",
        "event_auth",
        "get_missing_events",
    }
    assert all("{roomId}" in t for t in guarded)


# --- the compiled ACL cache ---------------------------------------------------------------


def test_compiled_acl_is_cached_per_event_and_a_redacted_copy_recompiled():
    net, a, b, c, room_id = _setup()
    acl_id = _set_acl(a, room_id, DENY_C)
    ev = a.room(room_id).get(ACL)
    assert ev.event_id == acl_id
    assert acl_check.compiled_acl(ev) is acl_check.compiled_acl(ev)
    assert not acl_check.server_allowed(a.room(room_id), "c.test:8448")
    assert acl_check.server_allowed(a.room(room_id), "b.test")
    # the same event with its content redacted: an ACL without allow denies everyone
    redacted = dict(ev.pdu, content={})
    copy = Event(redacted, ev.room_version, event_id=ev.event_id)
    assert not acl_check.compiled_acl(copy).allows("b.test")
    assert acl_check.compiled_acl(ev).allows("b.test")
