"""Events of a server outside the roster smuggled in by a member server (in a send_join
response or a transaction), between in-process federating nodes
(``inprocess_federation_support``: real RoomService + federation area per node,
X-Matrix-signed requests routed without sockets).

a.test hosts a room and does not enforce a roster (think: a member whose own checks are
weaker); c.test -- not in the city roster -- has a user in it.  b.test enforces the roster
(a and b only) and joins through a: the ``send_join`` state it receives holds c's
membership and c's messages reach it through a's transactions and ``/backfill``."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from federation.roster import RosterState, build_roster, generate_roster_key, server_entry
from inprocess_federation_support import FedNode, Network, forward, join_remote
from node.federation.roster_policy import RosterPolicy


def city():
    net = Network()
    a = FedNode(net, "a.test")
    policy = RosterPolicy()  # bound once every key exists
    b = FedNode(net, "b.test", policy=policy)
    c = FedNode(net, "c.test", users=("carol",))
    key = generate_roster_key(1)
    servers = {
        n.server_name: server_entry(
            school_id=n.server_name, name=n.server_name, verify_keys=[n.key.verify_key]
        )
        for n in (a, b)
    }
    doc = build_roster(None, servers, b.clock.time_ms(), 7 * 24 * 3600 * 1000, "city.test", key)
    state = RosterState(key.verify_key, "city.test")
    state.restore(doc)
    policy.bind(state)
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, c, room_id, user="carol")
    return net, a, b, c, room_id


def test_send_join_state_from_a_member_drops_the_outsiders_events():
    _net, a, b, c, room_id = city()
    carol = c.uid("carol")
    assert a.room(room_id).membership(carol) == "join"
    join_remote(a, b, room_id, user="bob")
    room = b.room(room_id)
    assert room.membership(b.uid("bob")) == "join"
    assert room.membership(a.uid("alice")) == "join"
    # c's join was in the state a sent; b did not take it.
    assert room.membership(carol) is None
    carol_join = a.room(room_id).state[("m.room.member", carol)].event_id
    assert result_of(b.rooms.get_event(carol_join)) is None


def test_outsiders_events_relayed_in_a_transaction_or_backfill_are_refused():
    _net, a, b, c, room_id = city()
    join_remote(a, b, room_id, user="bob")
    carol = c.uid("carol")
    # Built by c on a's view, relayed by a in a transaction:
    ev = c.build(
        room_id,
        carol,
        "m.room.message",
        {"body": "von c"},
        state=a.room(room_id).state,
        prev=list(b.room(room_id).extremities),
    )
    results = forward_pdus(a, b, [ev.pdu])
    assert "error" in results[ev.event_id], results
    assert result_of(b.rooms.get_event(ev.event_id)) is None
    # ... and in a /backfill answer.
    stored = result_of(b.fed.ingest.persist_backfilled("a.test", room_id, [ev.pdu]))
    assert stored == []
    assert result_of(b.rooms.get_event(ev.event_id)) is None


def forward_pdus(src, dst, pdus):
    status, body = dst.send_txn(src, pdus, txn_id="relay")
    assert status == 200, body
    return body["pdus"]


def test_the_outsider_itself_is_refused_and_members_are_not():
    _net, a, b, c, room_id = city()
    join_remote(a, b, room_id, user="bob")
    status, body = b.send_txn(c, [], txn_id="c-direct")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    assert body["error"] == "server c.test is not in the city roster"
    event_id = result_of(
        a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "von a"})
    )
    assert forward(a, b, [event_id], "a-ok") == {event_id: {}}
    assert event_id in b.visible_ids(room_id)
