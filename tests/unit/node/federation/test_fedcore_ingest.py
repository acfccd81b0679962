"""The inbound PDU pipeline (node/federation/ingest/) between in-process nodes: events
flow both ways through signed ``/send`` transactions, and each check on receipt of a PDU
is applied in the spec's order with the spec's outcome (dropped / redacted / rejected /
soft-failed)."""

from __future__ import annotations

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sqlalchemy import func, select
from support.deferreds import result_of

from federation.keys import SigningKey
from inprocess_federation_support import FedNode, Network, forward, join_remote, two_nodes_in_a_room
from node.rooms.event_meta import meta
from schema.events import events


def _two_nodes():
    return two_nodes_in_a_room()


def _stored(node, event_id):
    return node.db.run_sync(
        lambda c: c.execute(
            select(events.c.outlier, events.c.rejected_reason).where(events.c.event_id == event_id)
        ).first()
    )


def test_messages_flow_both_ways_and_state_stays_in_step():
    net, a, b, room_id = _two_nodes()
    assert b.state_ids(room_id) == a.state_ids(room_id)
    assert b.room(room_id).membership(b.uid("bob")) == "join"
    # alice (a) -> bob (b)
    m1 = result_of(
        a.rooms.send_event(
            a.uid("alice"), room_id, "m.room.message", {"msgtype": "m.text", "body": "hello b"}
        )
    )
    assert forward(a, b, [m1], "a1") == {m1: {}}
    assert m1 in b.visible_ids(room_id)
    assert b.room(room_id).extremities == [m1]
    # bob (b) -> alice (a): b builds on what it has
    m2 = result_of(
        b.rooms.send_event(
            b.uid("bob"), room_id, "m.room.message", {"msgtype": "m.text", "body": "hello a"}
        )
    )
    assert b.event(m2).prev_event_ids == [m1]
    assert forward(b, a, [m2], "b1") == {m2: {}}
    assert a.visible_ids(room_id)[-1] == m2
    # a state change from b arrives in a's current state
    pl = dict(a.room(room_id).content("m.room.power_levels"))
    pl["users"] = {**pl.get("users", {}), b.uid("bob"): 50}
    p = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.power_levels", pl, ""))
    assert forward(a, b, [p], "a2") == {p: {}}
    t = result_of(
        b.rooms.send_event(b.uid("bob"), room_id, "m.room.topic", {"topic": "from b"}, "")
    )
    assert forward(b, a, [t], "b2") == {t: {}}
    assert a.room(room_id).get("m.room.topic").event_id == t
    assert a.state_ids(room_id) == b.state_ids(room_id)
    assert result_of(a.rooms.state_store.get_state_ids_after(t)) == a.state_ids(room_id)


def test_forged_signature_is_dropped_and_not_stored():
    net, a, b, room_id = _two_nodes()
    ev = b.build(room_id, b.uid("bob"), "m.room.message", {"body": "real"})
    forged = copy.deepcopy(ev.pdu)
    forged["content"]["body"] = "forged"  # signed content changed
    forged["hashes"]["sha256"] = ev.pdu["hashes"]["sha256"]
    # Re-hash to a valid content hash so that only the signature is wrong.
    from federation.events.hashes import add_content_hash

    add_content_hash(forged)
    from federation.events.model import Event

    fid = Event(forged, b.room(room_id).room_version).event_id
    result = forward_raw(a, b, [forged], "f1")
    assert "Signature" in result[fid]["error"]
    assert _stored(a, fid) is None


def forward_raw(dst, src, pdus, txn_id):
    status, body = dst.send_txn(src, pdus, txn_id=txn_id)
    assert status == 200, body
    return body["pdus"]


def test_event_from_another_server_without_its_signature_is_dropped():
    net, a, b, room_id = _two_nodes()
    c = FedNode(net, "c.test")
    # b relays an event claiming to be from a user of c, signed only by b.
    ev = b.build(room_id, c.uid("carol"), "m.room.message", {"body": "spoof"})
    result = forward_raw(a, b, [ev.pdu], "s1")
    assert (
        "not signed by c.test" in result[ev.event_id]["error"]
        or "c.test" in result[ev.event_id]["error"]
    )
    assert _stored(a, ev.event_id) is None


def test_bad_content_hash_is_stored_redacted():
    net, a, b, room_id = _two_nodes()
    ev = b.build(room_id, b.uid("bob"), "m.room.message", {"body": "secret"})
    tampered = copy.deepcopy(ev.pdu)
    tampered["content"]["body"] = "changed"  # not covered by the signature
    result = forward_raw(a, b, [tampered], "h1")
    assert result == {ev.event_id: {}}
    stored = a.event(ev.event_id)
    assert stored.content == {}  # redacted before further processing
    assert ev.event_id in a.visible_ids(room_id)


def test_auth_failure_is_rejected_stored_and_hidden():
    net, a, b, room_id = _two_nodes()
    # bob (joined, power 0) may not change power levels.
    pl = dict(a.room(room_id).content("m.room.power_levels"))
    pl["users"] = {**pl.get("users", {}), b.uid("bob"): 100}
    ev = b.build(room_id, b.uid("bob"), "m.room.power_levels", pl, state_key="")
    result = forward_raw(a, b, [ev.pdu], "r1")
    assert result[ev.event_id]["error"].startswith("Event rejected")
    outlier, reason = _stored(a, ev.event_id)
    assert reason is not None and not outlier
    assert ev.event_id not in a.visible_ids(room_id)
    assert ev.event_id not in a.room(room_id).extremities
    assert a.room(room_id).get("m.room.power_levels").event_id != ev.event_id
    # A later event referencing the rejected one is still accepted (spec "Rejection").
    ok = b.build(
        room_id,
        b.uid("bob"),
        "m.room.message",
        {"body": "after"},
        prev=[ev.event_id],
        depth=ev.depth + 1,
    )
    assert forward_raw(a, b, [ok.pdu], "r2") == {ok.event_id: {}}
    assert (
        a.room(room_id).get("m.room.power_levels").content
        == result_of(a.rooms.get_current_state(room_id))[("m.room.power_levels", "")].content
    )


def test_soft_failed_event_is_stored_hidden_and_not_an_extremity():
    net, a, b, room_id = _two_nodes()
    before_ban = list(a.room(room_id).extremities)
    # bob's server prepares a topic change on the state before the ban...
    base_state = dict(a.room(room_id).state)
    pl = dict(a.room(room_id).content("m.room.power_levels"))
    pl["events"] = {**pl.get("events", {}), "m.room.topic": 0}
    result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.power_levels", pl, ""))
    base_state = dict(a.room(room_id).state)
    before_ban = list(a.room(room_id).extremities)
    depth = a.room(room_id).depth + 1
    # ... then alice bans bob.
    result_of(a.rooms.update_membership(a.uid("alice"), room_id, b.uid("bob"), "ban"))
    evade = b.build(
        room_id,
        b.uid("bob"),
        "m.room.topic",
        {"topic": "ban evasion"},
        state_key="",
        prev=before_ban,
        state=base_state,
        depth=depth,
    )
    result = forward_raw(a, b, [evade.pdu], "sf1")
    assert result == {evade.event_id: {}}  # soft failure is not an error
    outlier, reason = _stored(a, evade.event_id)
    assert outlier and reason is None
    assert evade.event_id not in a.visible_ids(room_id)
    assert evade.event_id not in a.room(room_id).extremities
    assert a.room(room_id).get("m.room.topic") is None
    assert a.fed.ingest.stats["soft_failed"] == 1
    # Its state is known: the state before it is the state before the ban.
    assert result_of(a.rooms.state_store.get_state_ids_before(evade.event_id)) == {
        k: e.event_id for k, e in base_state.items()
    }


def test_event_of_a_forbidden_server_is_refused():
    class DenyC:
        def allow_inbound(self, origin):
            return origin != "c.test"

        def allow_outbound(self, destination):
            return destination != "c.test"

        def pinned_keys(self, server_name):
            return None

    net = Network()
    a = FedNode(net, "a.test", policy=DenyC())
    b = FedNode(net, "b.test")
    c = FedNode(net, "c.test")
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, b, room_id)
    # c's own requests are refused outright ...
    status, body = a.send_txn(c, [], txn_id="c1")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # ... and c's events relayed by b are refused too.
    ev = b.build(
        room_id,
        c.uid("carol"),
        "m.room.member",
        {"membership": "join"},
        state_key=c.uid("carol"),
        key=c.key,
        server_name="c.test",
    )
    result = forward_raw(a, b, [ev.pdu], "c2")
    assert "not accepted" in result[ev.event_id]["error"]
    assert _stored(a, ev.event_id) is None


def test_missing_prev_events_are_fetched_with_get_missing_events():
    net, a, b, room_id = _two_nodes()
    sent = [
        result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": str(i)}))
        for i in range(5)
    ]
    # Only the newest reaches b: b asks a for the ones in between.
    assert forward(a, b, [sent[-1]], "gap") == {sent[-1]: {}}
    assert b.visible_ids(room_id)[-5:] == sent
    assert any(
        p.endswith("/get_missing_events/" + room_id) or "get_missing_events" in p
        for _, _, _, p in net.log
    )
    assert b.room(room_id).extremities == [sent[-1]]


def test_gap_beyond_the_limit_is_filled_with_the_state_at_the_prev_event():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test", max_missing_events=2)
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, b, room_id)
    sent = [
        result_of(
            a.rooms.send_event(a.uid("alice"), room_id, "m.room.topic", {"topic": str(i)}, "")
        )
        for i in range(6)
    ]
    assert forward(a, b, [sent[-1]], "gap2") == {sent[-1]: {}}
    # b could not walk back to what it had, but it knows the state and the newest event.
    assert b.state_ids(room_id) == a.state_ids(room_id)
    assert sent[-1] in b.visible_ids(room_id)


def test_forks_converge_with_state_resolution():
    net, a, b, room_id = _two_nodes()
    pl = dict(a.room(room_id).content("m.room.power_levels"))
    pl["users"] = {**pl.get("users", {}), b.uid("bob"): 50}
    p = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.power_levels", pl, ""))
    forward(a, b, [p], "pl")
    # Partition: both change the topic concurrently on the same parent.
    ta = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.topic", {"topic": "A"}, ""))
    tb = result_of(b.rooms.send_event(b.uid("bob"), room_id, "m.room.topic", {"topic": "B"}, ""))
    assert forward(a, b, [ta], "fa") == {ta: {}}
    assert forward(b, a, [tb], "fb") == {tb: {}}
    assert sorted(a.room(room_id).extremities) == sorted([ta, tb])
    assert sorted(b.room(room_id).extremities) == sorted([ta, tb])
    assert a.state_ids(room_id) == b.state_ids(room_id)
    # A merge event from a has both as prev events and is accepted by b.
    m = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "m"}))
    assert sorted(a.event(m).prev_event_ids) == sorted([ta, tb])
    assert forward(a, b, [m], "merge") == {m: {}}
    assert b.room(room_id).extremities == [m]
    assert a.state_ids(room_id) == b.state_ids(room_id)
    winner = a.room(room_id).get("m.room.topic").event_id
    assert winner in (ta, tb)
    assert result_of(b.rooms.state_store.get_state_ids_before(m))[("m.room.topic", "")] == winner


def test_events_for_unknown_rooms_get_no_result():
    net, a, b, room_id = _two_nodes()
    other = result_of(b.rooms.create_room(b.uid("bob"), {"preset": "public_chat"}))
    ev = b.event(b.room(other).extremities[0])
    assert forward_raw(a, b, [ev.pdu], "u1") == {}


def test_join_of_an_unknown_key_is_dropped():
    net, a, b, room_id = _two_nodes()
    stranger = SigningKey.generate("zz")
    ev = b.build(room_id, b.uid("bob"), "m.room.message", {"body": "x"}, key=stranger)
    result = forward_raw(a, b, [ev.pdu], "k1")
    assert "Signature" in result[ev.event_id]["error"]
    n = a.db.run_sync(
        lambda c: c.execute(
            select(func.count()).select_from(events).where(events.c.event_id == ev.event_id)
        ).scalar()
    )
    assert n == 0


def test_backfilled_history_is_stored_below_the_room_and_visible_in_order():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    history = [
        result_of(
            a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": f"old {i}"})
        )
        for i in range(5)
    ]
    join_id = join_remote(a, b, room_id)
    newer = result_of(
        a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "new"})
    )
    forward(a, b, [newer], "n1")
    before = b.rooms.current_stream_ordering()
    status, body = result_of(
        b.client.request(
            "a.test",
            "GET",
            f"/_matrix/federation/v1/backfill/{room_id}",
            query={"v": b.event(join_id).prev_event_ids, "limit": 3},
        )
    )
    assert status == 200
    stored = result_of(b.fed.ingest.persist_backfilled("a.test", room_id, body["pdus"]))
    assert [e.event_id for e in stored] == history[:-4:-1]  # newest first
    assert b.rooms.current_stream_ordering() == before  # not news for sync
    assert all(meta(e).stream_ordering < 0 for e in stored)
    # /messages order (newest first) continues from the join into the backfilled events.
    page = result_of(b.rooms.get_events_in_range(room_id, None, None, 100, "b"))
    ids = [e.event_id for e in page]
    assert (
        ids.index(newer)
        < ids.index(join_id)
        < ids.index(history[4])
        < ids.index(history[3])
        < ids.index(history[2])
    )
    visible = result_of(b.rooms.filter_events_for_user(b.uid("bob"), room_id, page))
    assert history[2] in [e.event_id for e in visible]
    # Current state and extremities did not move; a second backfill stores nothing twice.
    assert b.room(room_id).extremities == [newer]
    again = result_of(b.fed.ingest.persist_backfilled("a.test", room_id, body["pdus"]))
    assert again == []


def test_checks_apply_in_the_spec_order():
    net, a, b, room_id = _two_nodes()
    pl = dict(a.room(room_id).content("m.room.power_levels"))
    pl["users"] = {**pl.get("users", {}), b.uid("bob"): 100}
    # 2 before 4: a forged signature on an unauthorised event is dropped, not rejected.
    bad = b.build(
        room_id,
        b.uid("bob"),
        "m.room.power_levels",
        pl,
        state_key="",
        key=SigningKey(b.key.version, b"\x09" * 32),
    )
    err = forward_raw(a, b, [bad.pdu], "o1")[bad.event_id]["error"]
    assert "Signature" in err and _stored(a, bad.event_id) is None
    # 3 before 4: a wrong content hash redacts first; the redacted event is then rejected.
    ev = b.build(room_id, b.uid("bob"), "m.room.power_levels", pl, state_key="")
    tampered = copy.deepcopy(ev.pdu)
    tampered["content"]["extra"] = 1
    err = forward_raw(a, b, [tampered], "o2")[ev.event_id]["error"]
    assert err.startswith("Event rejected")
    outlier, reason = _stored(a, ev.event_id)
    assert reason is not None
    assert "extra" not in a.event(ev.event_id).content
    # 4 passes, 5 fails: bob cites his old join as auth event, but his prev events
    # come after he left -- rejected against the state before the event.
    join_state = dict(b.room(room_id).state)
    leave = result_of(b.rooms.update_membership(b.uid("bob"), room_id, b.uid("bob"), "leave"))
    forward(b, a, [leave.event_id], "o3")
    late = b.build(
        room_id,
        b.uid("bob"),
        "m.room.message",
        {"body": "after leaving"},
        state=join_state,
        prev=[leave.event_id],
        depth=leave.depth + 1,
    )
    err = forward_raw(a, b, [late.pdu], "o4")[late.event_id]["error"]
    assert "state before the event" in err
    assert _stored(a, late.event_id)[1] is not None


def test_received_state_events_carry_prev_content_for_clients():
    net, a, b, room_id = _two_nodes()
    t1 = result_of(
        a.rooms.send_event(a.uid("alice"), room_id, "m.room.topic", {"topic": "one"}, "")
    )
    t2 = result_of(
        a.rooms.send_event(a.uid("alice"), room_id, "m.room.topic", {"topic": "two"}, "")
    )
    forward(a, b, [t1, t2], "pc")
    client = b.rooms.format_client_event(b.event(t2))
    assert client["unsigned"]["prev_content"] == {"topic": "one"}
    assert client["unsigned"]["replaces_state"] == t1


def test_event_concurrent_with_our_join_is_accepted_with_fetched_state():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    c = FedNode(net, "c.test")
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, c, room_id, user="carol")
    history = [
        result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": str(i)}))
        for i in range(30)
    ]
    forward(a, c, history, "h")
    before_b = list(c.room(room_id).extremities)
    c_state = dict(c.room(room_id).state)
    join_id = join_remote(a, b, room_id)
    forward(a, c, [join_id], "j")
    # carol's message was created before c heard of bob's join: its prev is older than
    # anything b holds.
    msg = c.build(
        room_id,
        c.uid("carol"),
        "m.room.message",
        {"body": "concurrent"},
        prev=before_b,
        state=c_state,
    )
    assert forward_raw(b, c, [msg.pdu], "cc") == {msg.event_id: {}}
    assert msg.event_id in b.visible_ids(room_id)
    assert sorted(b.room(room_id).extremities) == sorted(
        [msg.event_id, b.room(room_id).get("m.room.member", b.uid("bob")).event_id]
    )
    assert b.room(room_id).membership(b.uid("bob")) == "join"
    # The walk back stopped at what b could connect to: old history was not fetched.
    assert history[0] not in b.visible_ids(room_id)
