"""A room whose deepest event has the largest canonical depth stays usable.

Spec: server-server API "PDUs" (``depth``: the maximum depth of the prev events plus one)
and appendix "Canonical JSON" (integers in [-(2**53)+1, (2**53)-1]).  A remote server may
send a valid PDU of depth 2**53 - 1; the next event built on top of it cannot have depth
2**53, so this node builds it with the ceiling instead -- otherwise every local event of the
room (messages, state, redactions, invites, kicks, even the creator's leave and the
``make_*`` templates for other servers) would fail as bad JSON, and one remote event would
brick the room for its local members.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from inprocess_federation_support import two_nodes_in_a_room

MAX_DEPTH = 2**53 - 1


def _deep_room():
    """a.test's room where b.test's bob sent a message of depth 2**53 - 1 (now the only
    forward extremity of a's room)."""
    net, a, b, room_id = two_nodes_in_a_room()
    bob = b.uid("bob")
    deep = a.build(
        room_id,
        bob,
        "m.room.message",
        {"msgtype": "m.text", "body": "deep"},
        depth=MAX_DEPTH,
        key=b.key,
        server_name=b.server_name,
    )
    status, body = a.send_txn(b, [deep.pdu], txn_id="deep")
    assert status == 200 and body["pdus"] == {deep.event_id: {}}, body
    assert a.room(room_id).extremities == [deep.event_id]
    return net, a, b, room_id, deep.event_id


def test_creator_can_send_change_state_and_redact_at_the_ceiling():
    net, a, b, room_id, deep_id = _deep_room()
    alice = a.uid("alice")
    msg = result_of(
        a.rooms.send_event(
            alice, room_id, "m.room.message", {"msgtype": "m.text", "body": "still here"}
        )
    )
    topic = result_of(
        a.rooms.send_event(
            alice, room_id, "m.room.topic", {"topic": "after the deep event"}, state_key=""
        )
    )
    redaction = result_of(a.rooms.redact_event(alice, room_id, deep_id))
    for event_id in (msg, topic, redaction.event_id):
        ev = a.event(event_id)
        assert ev.depth == MAX_DEPTH
        assert event_id in a.visible_ids(room_id)
    assert a.room(room_id).state[("m.room.topic", "")].event_id == topic
    assert a.event(msg).prev_event_ids == [deep_id]


def test_invite_kick_and_leave_at_the_ceiling():
    net, a, b, room_id, _ = _deep_room()
    alice, bob_b, bob_a = a.uid("alice"), b.uid("bob"), a.uid("bob")
    invite = result_of(a.rooms.update_membership(alice, room_id, bob_a, "invite"))
    kick = result_of(a.rooms.update_membership(alice, room_id, bob_b, "leave", action="kick"))
    leave = result_of(a.rooms.update_membership(alice, room_id, alice, "leave"))
    for ev in (invite, kick, leave):
        assert ev is not None and ev.depth == MAX_DEPTH
    room = a.room(room_id)
    assert room.membership(bob_a) == "invite"
    assert room.membership(bob_b) == "leave"
    assert room.membership(alice) == "leave"


# --- membership handshakes between two servers at the ceiling ---------------------------


def _handshake_nodes_with_deep_room():
    """Three servers with make_join/send_join/invite/make_leave wired (``fedout_support``):
    a.test's public room, b.test's bob joined through make_join, then bob's message of
    depth 2**53 - 1 received by a.test over ``/send``; c.test (carol) is not in the room."""
    from federation.auth.selection import auth_types_for_event
    from federation.events.builder import build_event
    from federation.keys import SigningKey
    from fedout_support import FedNode, link, make_clock

    rc = make_clock()
    network: dict = {}
    a = FedNode("a.test", SigningKey("a1", b"\x0a" * 32), network, rc)
    b = FedNode("b.test", SigningKey("b1", b"\x0b" * 32), network, rc)
    c = FedNode("c.test", SigningKey("c1", b"\x0c" * 32), network, rc, users=("carol",))
    link(a, b, c)
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    assert result_of(b.ms.join_room(bob, room_id, via=["a.test"])) == room_id
    room = result_of(a.rooms.get_room(room_id))
    content = {"msgtype": "m.text", "body": "deep"}
    keys = auth_types_for_event(room.room_version, "m.room.message", bob, None, content)
    deep = build_event(
        room.room_version,
        server_name="b.test",
        signing_key=b.key,
        type="m.room.message",
        sender=bob,
        content=content,
        room_id=room_id,
        prev_events=list(room.extremities),
        auth_events=[room.state[k].event_id for k in keys if k in room.state],
        depth=MAX_DEPTH,
        origin_server_ts=b.clock.time_ms(),
    )
    assert result_of(a.ingest.receive_pdus("b.test", [dict(deep.pdu)])) == {deep.event_id: {}}
    assert room.extremities == [deep.event_id]
    return a, c, room_id


def _membership(node, room_id, user):
    ev = result_of(node.rooms.get_current_state(room_id)).get(("m.room.member", user))
    return ev.content.get("membership") if ev is not None else None


def test_remote_join_through_a_make_join_template_at_the_ceiling():
    a, c, room_id = _handshake_nodes_with_deep_room()
    carol = c.uid("carol")
    template = result_of(a.ms.on_make_join("c.test", room_id, carol, ["12"]))
    assert template["event"]["depth"] == MAX_DEPTH
    assert result_of(c.ms.join_room(carol, room_id, via=["a.test"])) == room_id
    assert _membership(a, room_id, carol) == "join"
    joined = result_of(a.rooms.get_current_state(room_id))[("m.room.member", carol)]
    assert joined.depth == MAX_DEPTH


def test_rejecting_an_invite_at_the_ceiling_when_the_inviter_is_gone():
    a, c, room_id = _handshake_nodes_with_deep_room()
    alice, carol = a.uid("alice"), c.uid("carol")
    result_of(a.ms.invite_user(alice, room_id, carol))
    invite = result_of(a.rooms.get_current_state(room_id))[("m.room.member", carol)]
    assert invite.depth == MAX_DEPTH
    del c.network["a.test"]  # nobody to make_leave through: rejected locally
    result_of(c.ms.leave_room(carol, room_id))
    rows = result_of(c.rooms.get_rooms_for_user(carol))
    assert [(r, m) for r, m, _ in rows] == [(room_id, "leave")]
