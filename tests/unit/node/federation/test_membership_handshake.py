"""Membership handshakes between two in-process servers: remote join (by ID, via, alias,
after an invite), remote invite (the invitee's server signs and shows it in /sync),
rejecting a remote invite (make_leave/send_leave), leaving, and the resident side's
refusals."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from federation.events.builder import build_event
from federation.keys import SigningKey
from federation.room_versions import V12
from fedout_support import FedNode, link, make_clock

A, B = "a.test", "b.test"


@pytest.fixture
def net():
    rc = make_clock()
    network: dict = {}
    a = FedNode(A, SigningKey("a1", b"\x0a" * 32), network, rc)
    b = FedNode(B, SigningKey("b1", b"\x0b" * 32), network, rc, users=("bob", "carol"))
    link(a, b)
    return a, b


def state_of(node, room_id):
    return result_of(node.rooms.get_current_state(room_id))


def membership(node, room_id, user):
    ev = state_of(node, room_id).get(("m.room.member", user))
    return ev.content.get("membership") if ev is not None else None


def bodies(node, room_id):
    evs = result_of(node.rooms.get_events_in_range(room_id, None, None, 100, "f"))
    return [e.content.get("body") for e in evs if e.type == "m.room.message"]


def err(coro):
    try:
        result_of(coro)
    except MatrixError as exc:
        return exc.http_status, exc.errcode
    raise AssertionError("no error")


def test_remote_join_by_room_id_and_messages_both_ways(net):
    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "public_chat", "name": "Hall"}))
    assert result_of(b.ms.join_room(bob, room_id, via=[A])) == room_id
    # the resident accepted the join; the joining server has the room's full state
    assert membership(a, room_id, bob) == "join"
    assert membership(b, room_id, bob) == "join"
    assert membership(b, room_id, alice) == "join"
    assert state_of(b, room_id)[("m.room.name", "")].content["name"] == "Hall"
    assert result_of(b.rooms.joined_room_ids(bob)) == [room_id]
    # messages both ways through the outbound queues
    result_of(
        a.rooms.send_event(
            alice, room_id, "m.room.message", {"msgtype": "m.text", "body": "hi bob"}
        )
    )
    result_of(
        b.rooms.send_event(
            bob, room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"}
        )
    )
    assert bodies(a, room_id) == ["hi bob", "hi alice"]
    assert bodies(b, room_id) == ["hi bob", "hi alice"]
    # the resident did not send the join back to the joining server
    sent_back = [
        p
        for d, m, path, body, _ in a.client.requests
        if d == B and "/send/" in path
        for p in body["pdus"]
        if p.get("sender") == bob
    ]
    assert sent_back == []


def test_join_by_remote_alias(net):
    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(
        a.rooms.create_room(alice, {"preset": "public_chat", "room_alias_name": "lobby"})
    )
    assert result_of(b.ms.join_room(bob, "#lobby:a.test")) == room_id
    assert membership(a, room_id, bob) == "join"
    assert err(b.ms.join_room(bob, "#nope:a.test")) == (404, "M_NOT_FOUND")


def test_remote_invite_shown_with_room_state_then_accepted(net):
    a, b = net
    alice, carol = a.uid("alice"), b.uid("carol")
    room_id = result_of(
        a.rooms.create_room(alice, {"preset": "private_chat", "name": "Staff", "topic": "Plans"})
    )
    result_of(a.ms.invite_user(alice, room_id, carol))
    invite = state_of(a, room_id)[("m.room.member", carol)]
    assert invite.content["membership"] == "invite"
    # counter-signed by the invitee's server
    assert set(invite.pdu["signatures"]) == {A, B}
    # B shows the invite to carol with the inviting server's room state
    rows = result_of(b.rooms.get_rooms_for_user(carol))
    assert [(r, m) for r, m, _ in rows] == [(room_id, "invite")]
    stripped = result_of(b.rooms.stripped_state(room_id, [rows[0][2]]))
    kinds = {(s["type"], s["state_key"]) for s in stripped}
    assert ("m.room.create", "") in kinds and ("m.room.name", "") in kinds
    assert ("m.room.member", carol) in kinds
    assert next(s for s in stripped if s["type"] == "m.room.name")["content"] == {"name": "Staff"}
    # accepting: join through the inviting server without any via
    assert result_of(b.ms.join_room(carol, room_id)) == room_id
    assert membership(a, room_id, carol) == "join"
    assert membership(b, room_id, carol) == "join"


def test_rejecting_a_remote_invite_uses_make_and_send_leave(net):
    a, b = net
    alice, carol = a.uid("alice"), b.uid("carol")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    result_of(a.ms.invite_user(alice, room_id, carol))
    result_of(b.ms.leave_room(carol, room_id, reason="no thanks"))
    assert membership(a, room_id, carol) == "leave"
    assert state_of(a, room_id)[("m.room.member", carol)].content["reason"] == "no thanks"
    rows = result_of(b.rooms.get_rooms_for_user(carol))
    assert [(r, m) for r, m, _ in rows] == [(room_id, "leave")]
    assert any("/make_leave/" in r[2] for r in b.client.requests)


def test_rejecting_when_the_inviter_is_gone_is_local_only(net):
    a, b = net
    alice, carol = a.uid("alice"), b.uid("carol")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    result_of(a.ms.invite_user(alice, room_id, carol))
    del b.network[A]
    result_of(b.ms.leave_room(carol, room_id))
    rows = result_of(b.rooms.get_rooms_for_user(carol))
    assert [(r, m) for r, m, _ in rows] == [(room_id, "leave")]


def test_leaving_a_joined_remote_room_is_a_normal_event(net):
    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    result_of(b.ms.join_room(bob, room_id, via=[A]))
    result_of(b.ms.leave_room(bob, room_id))
    assert membership(b, room_id, bob) == "leave"
    assert membership(a, room_id, bob) == "leave"
    assert not any("/make_leave/" in r[2] for r in b.client.requests)


def test_invite_of_unknown_remote_user_is_404(net):
    a, _ = net
    alice = a.uid("alice")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    assert err(a.ms.invite_user(alice, room_id, "@nobody:b.test")) == (404, "M_NOT_FOUND")
    assert membership(a, room_id, "@nobody:b.test") is None


def test_remote_invite_to_a_policy_refused_server_is_403(net):
    a, _ = net
    alice = a.uid("alice")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    a.policy.refused.add(B)
    assert err(a.ms.invite_user(alice, room_id, "@carol:b.test")) == (403, "M_FORBIDDEN")
    assert not any(d == B for d, *_ in a.client.requests)


# --- the resident side refuses ----------------------------------------------------------


def test_make_join_refusals(net):
    a, _ = net
    alice = a.uid("alice")
    public = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    private = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    bob = "@bob:b.test"
    assert err(a.ms.on_make_join(B, "!unknown", bob, ["12"])) == (404, "M_NOT_FOUND")
    assert err(a.ms.on_make_join(B, public, "@bob:c.test", ["12"]))[0] == 403
    assert err(a.ms.on_make_join(B, public, bob, ["10", "11"])) == (
        400,
        "M_INCOMPATIBLE_ROOM_VERSION",
    )
    assert err(a.ms.on_make_join(B, private, bob, ["12"])) == (403, "M_FORBIDDEN")
    t = result_of(a.ms.on_make_join(B, public, bob, ["12"]))
    assert t["room_version"] == "12"
    ev = t["event"]
    assert (ev["type"], ev["sender"], ev["state_key"], ev["room_id"]) == (
        "m.room.member",
        bob,
        bob,
        public,
    )
    assert ev["content"] == {"membership": "join"} and "signatures" not in ev


def test_send_join_validation(net):
    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    t = result_of(a.ms.on_make_join(B, room_id, bob, ["12"]))["event"]

    def signed(**over):
        fields = dict(
            type="m.room.member",
            sender=bob,
            content={"membership": "join"},
            room_id=room_id,
            prev_events=t["prev_events"],
            auth_events=t["auth_events"],
            depth=t["depth"],
            origin_server_ts=t["origin_server_ts"],
            state_key=bob,
        )
        fields.update(over)
        key = over.pop("key", b.key) if "key" in over else b.key
        fields.pop("key", None)
        return build_event(V12, server_name=B, signing_key=key, **fields)

    good = signed()
    forged = signed(key=SigningKey("b1", b"\x66" * 32))
    assert err(a.ms.on_send_join(B, room_id, forged.event_id, forged.pdu)) == (
        400,
        "M_INVALID_PARAM",
    )
    assert err(a.ms.on_send_join(B, room_id, "$other", good.pdu)) == (400, "M_INVALID_PARAM")
    assert err(a.ms.on_send_join("c.test", room_id, good.event_id, good.pdu)) == (
        400,
        "M_INVALID_PARAM",
    )
    leave = signed(content={"membership": "leave"})
    assert err(a.ms.on_send_join(B, room_id, leave.event_id, leave.pdu)) == (400, "M_INVALID_PARAM")
    other = signed(state_key="@carol:b.test")
    assert err(a.ms.on_send_join(B, room_id, other.event_id, other.pdu)) == (400, "M_INVALID_PARAM")
    assert membership(a, room_id, bob) is None
    resp = result_of(a.ms.on_send_join(B, room_id, good.event_id, good.pdu))
    assert resp["members_omitted"] is False and resp["servers_in_room"] == [A]
    state_types = {(p["type"], p.get("state_key")) for p in resp["state"]}
    assert ("m.room.create", "") in state_types and ("m.room.member", alice) in state_types
    assert ("m.room.member", bob) not in state_types  # the state *before* the join
    chain_ids = {p["type"] for p in resp["auth_chain"]}
    assert "m.room.create" in chain_ids and "m.room.power_levels" in chain_ids
    assert resp["event"]["content"]["membership"] == "join"
    assert membership(a, room_id, bob) == "join"


def test_invite_endpoint_validation(net):
    a, b = net
    alice = a.uid("alice")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    room = result_of(a.rooms.get_room(room_id))
    ev = a.rooms.build_and_check(
        room, alice, "m.room.member", {"membership": "invite"}, state_key="@carol:b.test"
    )
    body = {"room_version": "12", "event": ev.pdu, "invite_room_state": []}
    assert err(b.ms.on_invite(A, room_id, ev.event_id, {**body, "room_version": "99"})) == (
        400,
        "M_INCOMPATIBLE_ROOM_VERSION",
    )
    assert err(b.ms.on_invite("c.test", room_id, ev.event_id, body)) == (400, "M_INVALID_PARAM")
    nobody = a.rooms.build_and_check(
        room, alice, "m.room.member", {"membership": "invite"}, state_key="@nobody:b.test"
    )
    assert err(b.ms.on_invite(A, room_id, nobody.event_id, {**body, "event": nobody.pdu})) == (
        404,
        "M_NOT_FOUND",
    )
    elsewhere = a.rooms.build_and_check(
        room, alice, "m.room.member", {"membership": "invite"}, state_key="@x:c.test"
    )
    assert err(
        b.ms.on_invite(A, room_id, elsewhere.event_id, {**body, "event": elsewhere.pdu})
    ) == (400, "M_INVALID_PARAM")
    resp = result_of(b.ms.on_invite(A, room_id, ev.event_id, body))
    out = resp["event"]
    assert set(out["signatures"]) == {A, B}
    assert {k: v for k, v in out.items() if k != "signatures"} == {
        k: v for k, v in ev.pdu.items() if k != "signatures"
    }


# --- knocking ---------------------------------------------------------------------------


def test_knock_on_a_remote_room_then_invited_in(net):
    a, b = net
    alice, carol = a.uid("alice"), b.uid("carol")
    room_id = result_of(
        a.rooms.create_room(
            alice,
            {
                "name": "Chess club",
                "initial_state": [
                    {
                        "type": "m.room.join_rules",
                        "state_key": "",
                        "content": {"join_rule": "knock"},
                    }
                ],
            },
        )
    )
    assert result_of(b.ms.knock_room(carol, room_id, via=[A], reason="let me in")) == room_id
    knock_ev = state_of(a, room_id)[("m.room.member", carol)]
    assert knock_ev.content == {"membership": "knock", "reason": "let me in"}
    rows = result_of(b.rooms.get_rooms_for_user(carol))
    assert [(r, m) for r, m, _ in rows] == [(room_id, "knock")]
    stripped = result_of(b.rooms.stripped_state(room_id, [rows[0][2]]))
    assert {
        "type": "m.room.name",
        "state_key": "",
        "content": {"name": "Chess club"},
        "sender": alice,
    } in stripped
    # the resident's admin accepts by inviting; carol then joins
    result_of(a.ms.invite_user(alice, room_id, carol))
    assert result_of(b.ms.join_room(carol, room_id)) == room_id
    assert membership(a, room_id, carol) == "join"


def test_make_knock_refusals(net):
    a, _ = net
    alice = a.uid("alice")
    invite_only = result_of(a.rooms.create_room(alice, {"preset": "private_chat"}))
    assert err(a.ms.on_make_knock(B, invite_only, "@bob:b.test", ["12"])) == (403, "M_FORBIDDEN")
    assert err(a.ms.on_make_knock(B, invite_only, "@bob:b.test", [])) == (
        400,
        "M_INCOMPATIBLE_ROOM_VERSION",
    )


# --- /messages past the join: backfill ---------------------------------------------------


def test_messages_before_the_join_are_backfilled_from_the_resident(net):
    from node.rooms.pagination import paginate

    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    for i in range(30):
        result_of(
            a.rooms.send_event(
                alice, room_id, "m.room.message", {"msgtype": "m.text", "body": f"old {i}"}
            )
        )
    result_of(b.ms.join_room(bob, room_id, via=[A]))
    assert bodies(b, room_id) == []  # nothing from before the join yet
    seen, token = [], None
    for _ in range(10):
        page = result_of(
            paginate(b.rooms, bob, room_id, from_token=token, to_token=None, direction="b", limit=8)
        )
        seen += [e.content.get("body") for e in page.chunk if e.type == "m.room.message"]
        if page.end is None:
            break
        token = page.end
    assert seen == [f"old {i}" for i in range(29, -1, -1)]  # newest first, no gaps
    backfills = [r for r in b.client.requests if "/backfill/" in r[2]]
    assert backfills and all(r[0] == A for r in backfills)
