"""What clients see across schools, in-process: ``createRoom`` with another school's user
in ``invite`` (the federation invite handshake, ``is_direct`` and the room's stripped
state reach the invitee), another school's aliases through ``GET /directory/room`` and
its published rooms through ``/publicRooms?server=`` (federation ``query/directory`` and
``publicRooms``), with untrusted answers cleaned and remote failures mapped."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from federation.keys import SigningKey
from federation.transport.errors import DestinationUnreachable, RequestTimedOut
from fedout_support import FedNode, link, make_clock
from node.federation.remote import public_rooms as pr
from node.federation.remote.remote_directory import ALIAS_TTL_MS, RemoteDirectoryClient
from node.rooms import aliases_ops
from node.rooms.creation import MAX_REMOTE_INVITES

A, B = "a.test", "b.test"


@pytest.fixture
def net():
    rc = make_clock()
    network: dict = {}
    a = FedNode(A, SigningKey("a1", b"\x0a" * 32), network, rc)
    b = FedNode(B, SigningKey("b1", b"\x0b" * 32), network, rc, users=("bob", "carol"))
    link(a, b)
    return a, b


def err(coro):
    try:
        result_of(coro)
    except MatrixError as exc:
        return exc.http_status, exc.errcode
    raise AssertionError("no error")


def membership(node, room_id, user):
    ev = result_of(node.rooms.get_current_state(room_id)).get(("m.room.member", user))
    return ev.content.get("membership") if ev is not None else None


# --- createRoom with a user of another school ---------------------------------------------


def test_create_room_invites_a_remote_user_through_the_handshake(net):
    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    room_id = result_of(
        a.rooms.create_room(
            alice, {"preset": "trusted_private_chat", "invite": [bob], "is_direct": True}
        )
    )
    # the invite went through PUT /v2/invite, not as a PDU to a server not in the room
    invites = [r for r in a.client.requests if r[0] == B and "/v2/invite/" in r[2]]
    assert len(invites) == 1
    assert invites[0][3]["event"]["content"] == {"membership": "invite", "is_direct": True}
    # the invitee's server counter-signed it, and it is in the room's state
    invite = result_of(a.rooms.get_current_state(room_id))[("m.room.member", bob)]
    assert invite.content["is_direct"] is True and set(invite.pdu["signatures"]) == {A, B}
    # bob's server shows it, with the inviter's member event so clients can name the DM
    rows = result_of(b.rooms.get_rooms_for_user(bob))
    assert [(r, m) for r, m, _ in rows] == [(room_id, "invite")]
    stripped = result_of(b.rooms.stripped_state(room_id, [rows[0][2]]))
    own = next(s for s in stripped if s["type"] == "m.room.member" and s["state_key"] == bob)
    assert own["content"]["is_direct"] is True and own["sender"] == alice
    inviter = next(s for s in stripped if s["state_key"] == alice)
    assert inviter["content"]["displayname"] == "Alice"
    # bob joins, both talk
    assert result_of(b.ms.join_room(bob, room_id)) == room_id
    assert membership(a, room_id, bob) == "join"
    result_of(
        a.rooms.send_event(alice, room_id, "m.room.message", {"msgtype": "m.text", "body": "hi"})
    )
    evs = result_of(b.rooms.get_events_in_range(room_id, None, None, 100, "f"))
    assert [e.content.get("body") for e in evs if e.type == "m.room.message"] == ["hi"]


def test_create_room_with_local_and_remote_invitees(net):
    a, b = net
    alice, local, remote = a.uid("alice"), a.uid("bob"), b.uid("carol")
    room_id = result_of(a.rooms.create_room(alice, {"invite": [local, remote], "name": "Mixed"}))
    assert membership(a, room_id, local) == "invite"
    assert membership(a, room_id, remote) == "invite"
    local_ev = result_of(a.rooms.get_current_state(room_id))[("m.room.member", local)]
    assert "is_direct" not in local_ev.content


def test_create_room_remote_invite_failure_is_reported(net):
    a, b = net
    alice, bob = a.uid("alice"), b.uid("bob")
    a.client.down.add(B)
    assert err(a.rooms.create_room(alice, {"invite": [bob], "is_direct": True})) == (
        502,
        "M_UNKNOWN",
    )
    # the room exists with the creator in it (a retry with /invite can work)
    rooms = result_of(a.rooms.joined_room_ids(alice))
    assert len(rooms) == 1 and membership(a, rooms[0], bob) is None


def test_create_room_waits_once_for_an_unreachable_server(net):
    a, b = net
    a.client.down.add(B)
    invitees = [b.uid("bob"), b.uid("carol")]
    assert err(a.rooms.create_room(a.uid("alice"), {"invite": invitees}))[0] == 502
    assert len([r for r in a.client.requests if r[0] == B and "/invite/" in r[2]]) == 1


def test_create_room_caps_invitees_of_other_servers(net):
    a, _ = net
    many = [f"@u{i}:b.test" for i in range(MAX_REMOTE_INVITES + 1)]
    assert err(a.rooms.create_room(a.uid("alice"), {"invite": many})) == (400, "M_INVALID_PARAM")
    assert result_of(a.rooms.joined_room_ids(a.uid("alice"))) == []
    assert a.client.requests == []


def test_create_room_refuses_a_server_the_policy_refuses(net):
    a, b = net
    a.policy.allow_outbound = lambda server: server != B
    status, code = err(a.rooms.create_room(a.uid("alice"), {"invite": [b.uid("bob")]}))
    assert (status, code) == (403, "M_FORBIDDEN")
    assert not [r for r in a.client.requests if r[0] == B]
    # refused before anything was created: no stray room for the creator
    assert result_of(a.rooms.joined_room_ids(a.uid("alice"))) == []


# --- remote aliases -------------------------------------------------------------------------


def _directory(node):
    return RemoteDirectoryClient(
        client=node.client, clock=node.clock, server_name=node.server, policy=node.policy
    )


def test_remote_alias_lookup_through_query_directory(net):
    a, b = net
    room_id = result_of(
        a.rooms.create_room(a.uid("alice"), {"preset": "public_chat", "room_alias_name": "chess"})
    )
    b.rooms.hooks.remote_directory = _directory(b)
    answer = result_of(aliases_ops.get_alias(b.rooms, "#chess:a.test"))
    assert answer == {"room_id": room_id, "servers": [A]}
    asked = [r for r in b.client.requests if r[0] == A and "/query/directory" in r[2]]
    assert asked[0][4] == {"room_alias": "#chess:a.test"}
    assert err(aliases_ops.get_alias(b.rooms, "#nope:a.test")) == (404, "M_NOT_FOUND")
    # the local path is unchanged: an alias of ours never leaves the node
    assert err(aliases_ops.get_alias(b.rooms, "#nope:b.test")) == (404, "M_NOT_FOUND")
    assert not [r for r in b.client.requests if r[0] == B]


class _Clock:
    def __init__(self):
        self.now = 1_000_000

    def time_ms(self):
        return self.now


class _Client:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    async def request(self, destination, method, path, json_body=None, query=None, timeout=None):
        self.calls.append((destination, method, path, json_body, query))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Policy:
    def allow_outbound(self, server):
        return server != "outsider.test"

    def refusal_message(self, server):
        return f"server {server} is not in the city roster"


def _client_dir(answer, clock=None):
    client = _Client(answer)
    return client, RemoteDirectoryClient(
        client=client, clock=clock or _Clock(), server_name="me.test", policy=_Policy()
    )


def test_alias_answers_are_cleaned_and_cached():
    clock = _Clock()
    client, d = _client_dir(
        (200, {"room_id": "!r:x.test", "servers": ["y.test", 3, "bad name", "y.test"]}), clock
    )
    assert result_of(d.resolve_alias("#a:x.test")) == {
        "room_id": "!r:x.test",
        "servers": ["x.test", "y.test"],
    }
    result_of(d.resolve_alias("#a:x.test"))
    assert len(client.calls) == 1
    clock.now += ALIAS_TTL_MS
    result_of(d.resolve_alias("#a:x.test"))
    assert len(client.calls) == 2


@pytest.mark.parametrize(
    "answer, expected",
    [
        ((200, {"room_id": 5}), (502, "M_UNKNOWN")),
        ((500, {"errcode": "M_UNKNOWN"}), (502, "M_UNKNOWN")),
        ((400, {"errcode": "M_INVALID_PARAM"}), (502, "M_UNKNOWN")),
        ((401, {"errcode": "M_UNAUTHORIZED"}), (502, "M_UNKNOWN")),
        ((403, {"errcode": "M_FORBIDDEN", "error": "no"}), (403, "M_FORBIDDEN")),
        (DestinationUnreachable("x.test", "refused"), (502, "M_UNKNOWN")),
        (RequestTimedOut("x.test", "slow"), (504, "M_UNKNOWN")),
    ],
)
def test_alias_remote_failures_map_to_clear_errors(answer, expected):
    _, d = _client_dir(answer)
    assert err(d.resolve_alias("#a:x.test")) == expected


def test_alias_of_a_server_outside_the_roster_is_refused_without_a_request():
    client, d = _client_dir((200, {}))
    assert err(d.resolve_alias("#a:outsider.test")) == (403, "M_FORBIDDEN")
    assert client.calls == []


# --- remote published rooms -----------------------------------------------------------------

PAGE = {
    "chunk": [
        {
            "room_id": "!a:x.test",
            "name": "Chess",
            "num_joined_members": 3,
            "world_readable": True,
            "guest_can_join": False,
            "evil": {"x": 1},
        },
        {"room_id": "not a room"},
        "junk",
        {"room_id": "!b:x.test", "topic": 5, "num_joined_members": -1, "room_type": "m.space"},
    ],
    "next_batch": "n1",
    "prev_batch": "x" * 5000,
    "total_room_count_estimate": 2,
}


def test_public_rooms_of_another_server_are_cleaned():
    client, d = _client_dir((200, PAGE))
    page = result_of(d.public_rooms("x.test", limit=10, since="s0"))
    assert page == {
        "chunk": [
            {
                "room_id": "!a:x.test",
                "name": "Chess",
                "num_joined_members": 3,
                "world_readable": True,
                "guest_can_join": False,
                "join_rule": "public",
            },
            {
                "room_id": "!b:x.test",
                "room_type": "m.space",
                "num_joined_members": 0,
                "world_readable": False,
                "guest_can_join": False,
                "join_rule": "public",
            },
        ],
        "next_batch": "n1",
        "total_room_count_estimate": 2,
    }
    dest, method, path, body, query = client.calls[0]
    assert (dest, method, path) == ("x.test", "GET", "/_matrix/federation/v1/publicRooms")
    assert query == {"limit": 10, "since": "s0"} and body is None


def test_public_rooms_filter_goes_by_post_and_limit_is_capped():
    client, d = _client_dir((200, {"chunk": [{"room_id": f"!{i}:x"} for i in range(900)]}))
    page = result_of(
        d.public_rooms("x.test", limit=10_000, since=None, search_term="chess", room_types=[None])
    )
    assert len(page["chunk"]) == pr.MAX_LIMIT
    _, method, _, body, query = client.calls[0]
    assert method == "POST" and query is None
    assert body == {
        "limit": pr.MAX_LIMIT,
        "filter": {"generic_search_term": "chess", "room_types": [None]},
    }


def test_public_rooms_are_cached_briefly():
    clock = _Clock()
    client, d = _client_dir((200, PAGE), clock)
    first = result_of(d.public_rooms("x.test", limit=None, since=None))
    first["chunk"].clear()  # a caller changing its copy does not change the cache
    assert len(result_of(d.public_rooms("x.test", limit=None, since=None))["chunk"]) == 2
    assert len(client.calls) == 1
    clock.now += pr.TTL_MS
    result_of(d.public_rooms("x.test", limit=None, since=None))
    assert len(client.calls) == 2


def test_public_rooms_refusals_and_failures():
    client, d = _client_dir(DestinationUnreachable("x.test", "down"))
    assert err(d.public_rooms("outsider.test", limit=None, since=None)) == (403, "M_FORBIDDEN")
    assert err(d.public_rooms("not a server", limit=None, since=None)) == (400, "M_INVALID_PARAM")
    assert client.calls == []
    assert err(d.public_rooms("x.test", limit=None, since=None)) == (502, "M_UNKNOWN")
    _, d = _client_dir((404, {"errcode": "M_UNRECOGNIZED"}))
    assert err(d.public_rooms("x.test", limit=None, since=None)) == (502, "M_UNKNOWN")


# --- the generic federation query -----------------------------------------------------------


def test_unknown_query_types_are_unrecognized_known_ones_answer():
    import inprocess_federation_support as core

    net = core.Network()
    a = core.FedNode(net, "a.test")
    b = core.FedNode(net, "b.test")
    q = "/_matrix/federation/v1/query/"
    status, body = result_of(b.client.request("a.test", "GET", q + "thirdparty_lookup"))
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")
    # a route of its own: signed like every query (an unsigned request is refused first)
    status, body = core.dispatch(a, "GET", q + "thirdparty_lookup", b"", {})
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")
    status, _ = result_of(
        b.client.request("a.test", "GET", q + "profile", query={"user_id": a.uid("alice")})
    )
    assert status == 200
    status, body = result_of(
        b.client.request("a.test", "GET", q + "directory", query={"room_alias": "#x:a.test"})
    )
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
