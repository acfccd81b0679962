"""The pure parts and the fetcher of node/federation/remote/hierarchy.py: untrusted answers
are cleaned, children are ordered as the spec's "Ordering of children within a space"
example says, ``via`` servers are tried in turn, answers and failures are cached."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

import inprocess_federation_support  # noqa: F401 - puts tests/unit/node on the path
from federation.transport.errors import DestinationUnreachable
from node.federation.remote.hierarchy import (
    FAILURE_TTL_MS,
    MAX_VIA,
    TTL_MS,
    RemoteHierarchy,
    child_refs,
    clean_summary,
    parse_answer,
    user_may_see,
)


def _ev(sk, ts, **content):
    content.setdefault("via", ["example.org"])
    return {
        "type": "m.space.child",
        "state_key": sk,
        "content": content,
        "sender": "@a:example.org",
        "origin_server_ts": ts,
    }


def test_child_order_follows_the_spec_example():
    events = [
        _ev("!b:example.org", 1640341000000, order=" "),
        _ev("!a:example.org", 1640141000000, order="aaaa"),
        _ev("!c:example.org", 1640841000000, order="first"),
        _ev("!e:example.org", 1640641000000),
        _ev("!d:example.org", 1640741000000),
    ]
    assert [e["state_key"] for e in child_refs(events, False)] == [
        "!b:example.org",
        "!a:example.org",
        "!c:example.org",
        "!e:example.org",
        "!d:example.org",
    ]


def test_child_refs_drops_invalid_and_unsuggested():
    events = [
        _ev("!a:x", 1, via=[]),
        _ev("!b:x", 2, via="x"),
        _ev("!c:x", 3, via=[1]),
        _ev("!d:x", 4, suggested=True),
        _ev("!e:x", 5),
        _ev("!f:x", 6, order="\x7f"),
    ]
    assert [e["state_key"] for e in child_refs(events, False)] == ["!d:x", "!e:x", "!f:x"]
    assert [e["state_key"] for e in child_refs(events, True)] == ["!d:x"]


def test_clean_summary_keeps_only_well_typed_fields():
    raw = {
        "room_id": "!r:x",
        "name": 5,
        "topic": "T",
        "num_joined_members": True,
        "world_readable": "yes",
        "guest_can_join": True,
        "room_type": "m.space",
        "allowed_room_ids": ["!a:x", 3],
        "evil": {"x": 1},
        "children_state": [
            _ev("!c:x", 1),
            {"type": "m.room.name"},
            "junk",
            {"type": "m.space.child", "state_key": "nope", "content": {}},
        ],
    }
    summary, kids = clean_summary(raw)
    assert summary == {
        "room_id": "!r:x",
        "topic": "T",
        "room_type": "m.space",
        "num_joined_members": 0,
        "world_readable": False,
        "guest_can_join": True,
        "join_rule": "public",
        "allowed_room_ids": ["!a:x"],
    }
    assert [k["state_key"] for k in kids] == ["!c:x"]
    assert clean_summary({"room_id": 3}) is None and clean_summary([]) is None
    # a room that is not a space has no children
    assert clean_summary({"room_id": "!r:x", "children_state": [_ev("!c:x", 1)]})[1] == []


def test_user_may_see():
    assert user_may_see({"join_rule": "public"}, set())
    assert user_may_see({"join_rule": "knock"}, set())
    assert not user_may_see({"join_rule": "invite"}, set())
    assert user_may_see({"join_rule": "invite", "world_readable": True}, set())
    r = {"join_rule": "restricted", "allowed_room_ids": ["!school:x"]}
    assert not user_may_see(r, {"!other:x"}) and user_may_see(r, {"!school:x"})


def test_parse_answer_only_keeps_children_the_room_lists():
    body = {
        "room": {
            "room_id": "!s:x",
            "room_type": "m.space",
            "children_state": [_ev("!a:x", 1), _ev("!b:x", 2)],
        },
        "children": [{"room_id": "!a:x", "name": "A"}, {"room_id": "!planted:x"}],
        "inaccessible_children": ["!b:x", "!other:x"],
    }
    room = parse_answer("!s:x", body)
    assert room.known["!a:x"].summary["name"] == "A" and room.known["!b:x"] is None
    assert set(room.known) == {"!a:x", "!b:x"}
    assert parse_answer("!other:x", body) is None  # an answer about another room


class _Clock:
    def __init__(self):
        self.now = 1_000_000

    def time_ms(self):
        return self.now


class _Client:
    def __init__(self, answers):
        self.answers = answers  # server -> (status, body) or an exception
        self.calls = []

    async def request(self, destination, method, path, json_body=None, query=None, timeout=None):
        self.calls.append((destination, path, query))
        a = self.answers.get(destination, DestinationUnreachable(destination, "down"))
        if isinstance(a, Exception):
            raise a
        return a


class _Policy:
    def allow_outbound(self, server):
        return server != "refused.test"


GOOD = (
    200,
    {"room": {"room_id": "!r:x", "name": "Room"}, "children": [], "inaccessible_children": []},
)


def test_fetch_tries_via_servers_in_turn_and_caches():
    clock = _Clock()
    client = _Client({"b.test": (500, {}), "c.test": GOOD})
    rh = RemoteHierarchy(client=client, clock=clock, server_name="me.test", policy=_Policy())
    via = ["me.test", "refused.test", "a.test", "b.test", "c.test"]
    room = result_of(rh.fetch("!r:x", via, False))
    assert room.summary["name"] == "Room"
    assert [c[0] for c in client.calls] == ["a.test", "b.test", "c.test"]
    assert client.calls[0][2] == {"suggested_only": "false"}
    assert rh.cached("!r:x", False)[1] is room and rh.cached("!r:x", True) == (False, None)
    clock.now += TTL_MS
    assert rh.cached("!r:x", False) == (False, None)


def test_fetch_asks_at_most_max_via_servers_and_remembers_failures_briefly():
    clock = _Clock()
    client = _Client({})
    rh = RemoteHierarchy(client=client, clock=clock, server_name="me.test")
    assert result_of(rh.fetch("!r:x", [f"s{i}.test" for i in range(10)], True)) is None
    assert len(client.calls) == MAX_VIA
    assert rh.cached("!r:x", True) == (True, None)
    clock.now += FAILURE_TTL_MS
    assert rh.cached("!r:x", True) == (False, None)


def test_a_404_is_remembered_for_the_full_ttl():
    clock = _Clock()
    client = _Client(
        {"a.test": (404, {"errcode": "M_NOT_FOUND"}), "b.test": (200, {"not": "an answer"})}
    )
    rh = RemoteHierarchy(client=client, clock=clock, server_name="me.test")
    assert result_of(rh.fetch("!r:x", ["a.test", "b.test"], False)) is None
    clock.now += FAILURE_TTL_MS
    assert rh.cached("!r:x", False) == (True, None)
