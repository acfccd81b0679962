"""Presence (client-server API "Presence") as clients see it: the status endpoints,
``presence`` in ``/sync`` for users sharing a room, the school's role policy and the idle
and offline timers."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
from support.deferreds import result_of

from federation.errors import MatrixError
from node.config import PresenceConfig
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.sync.api import register_all
from node.sync.presence_wiring import wire_presence
from test_sync_handler import ALICE, BOB, CAROL, SERVER, Node

V3 = "/_matrix/client/v3"
ROLES = {ALICE: "teacher", BOB: "pupil", CAROL: "teacher"}


class PresenceNode(Node):
    def __init__(self, enabled: bool = True, db=None) -> None:
        super().__init__(db)
        self.router = Router()
        register_all(self.router, self.sync)
        ctx = SimpleNamespace(
            config=SimpleNamespace(presence=PresenceConfig(enabled=enabled)),
            clock=self.rclock,
            server_name=SERVER,
            router=self.router,
            db=self.db,
        )
        accounts = SimpleNamespace(role_of=ROLES.get)
        self.presence = wire_presence(ctx, self.sync, accounts, self.rooms)

    def call(self, method, path, user, body=None, query=None):
        route, params, _ = self.router.match(method, path)
        assert route is not None, f"no route for {method} {path}"
        data = b"" if body is None else orjson.dumps(body)
        req = ApiRequest(method, path, {k: [v] for k, v in (query or {}).items()}, {}, data, "::1")
        req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    def put(self, user, body, target=None):
        return self.call("PUT", f"{V3}/presence/{target or user}/status", user, body)

    def get(self, user, target):
        return self.call("GET", f"{V3}/presence/{target}/status", user)


def presence_of(sync_body, user):
    return [e["content"] for e in sync_body["presence"]["events"] if e["sender"] == user]


def shared_room(node):
    room = node.room(ALICE, preset="public_chat")
    node.member(BOB, room, BOB, "join")
    return room


def test_status_round_trip_for_users_sharing_a_room():
    node = PresenceNode()
    shared_room(node)
    assert node.put(ALICE, {"presence": "online", "status_msg": "in class"}) == (200, {})
    status, body = node.get(BOB, ALICE)
    assert status == 200
    assert body["presence"] == "online" and body["status_msg"] == "in class"
    assert body["currently_active"] is True and body["last_active_ago"] >= 0
    # carol shares no room with alice: not allowed
    status, err = node.get(CAROL, ALICE)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    # a user may always read their own
    assert node.get(ALICE, ALICE)[0] == 200
    # unavailable keeps the status message unless it is given
    assert node.put(ALICE, {"presence": "unavailable"}) == (200, {})
    body = node.get(BOB, ALICE)[1]
    assert body["presence"] == "unavailable" and body["status_msg"] == "in class"
    assert "currently_active" not in body
    node.put(ALICE, {"presence": "online", "status_msg": None})
    assert "status_msg" not in node.get(BOB, ALICE)[1]


def test_pupils_presence_is_not_shared_by_default():
    node = PresenceNode()
    shared_room(node)
    node.put(BOB, {"presence": "online"})
    status, err = node.get(ALICE, BOB)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    assert node.get(BOB, BOB)[0] == 200
    assert presence_of(node.do(ALICE), BOB) == []


def test_presence_off_accepts_puts_and_shows_nothing():
    node = PresenceNode(enabled=False)
    shared_room(node)
    assert node.put(ALICE, {"presence": "online"}) == (200, {})
    status, err = node.get(BOB, ALICE)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    assert node.do(BOB)["presence"] == {"events": []}


def test_bad_requests():
    node = PresenceNode()
    status, err = node.put(ALICE, {"presence": "online"}, target=BOB)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    assert node.put(ALICE, {})[1]["errcode"] == "M_MISSING_PARAM"
    assert node.put(ALICE, {"presence": "busy"})[1]["errcode"] == "M_INVALID_PARAM"
    long_msg = {"presence": "online", "status_msg": "x" * 257}
    assert node.put(ALICE, long_msg)[1]["errcode"] == "M_INVALID_PARAM"
    assert node.put(ALICE, {"presence": "online", "status_msg": 5})[1]["errcode"] == "M_BAD_JSON"
    assert node.get(ALICE, "nobody")[1]["errcode"] == "M_INVALID_PARAM"


def test_sync_carries_presence_to_room_members_only():
    node = PresenceNode()
    room = shared_room(node)
    node.put(ALICE, {"presence": "online", "status_msg": "marking"})
    first = node.do(BOB)
    assert presence_of(first, ALICE)[0]["status_msg"] == "marking"
    assert presence_of(node.do(CAROL), ALICE) == []
    # an incremental sync has only what changed, once
    node.put(ALICE, {"presence": "unavailable"})
    second = node.do(BOB, first["next_batch"])
    assert [c["presence"] for c in presence_of(second, ALICE)] == ["unavailable"]
    third = node.do(BOB, second["next_batch"])
    assert third["presence"]["events"] == []
    # a filter can turn it off
    node.put(ALICE, {"presence": "online"})
    quiet = node.do(BOB, third["next_batch"], flt={"presence": {"not_types": ["*"]}})
    assert quiet["presence"]["events"] == []
    assert room in first["rooms"]["join"]


def test_a_long_poll_wakes_on_a_presence_change():
    node = PresenceNode()
    shared_room(node)
    since = node.do(BOB)["next_batch"]
    out, _waiting = node.start(BOB, since, timeout=30_000)
    assert out == []
    node.put(ALICE, {"presence": "unavailable"})
    assert out and presence_of(out[0], ALICE)[0]["presence"] == "unavailable"


def test_sync_sets_online_and_idle_then_offline_timers():
    node = PresenceNode()
    shared_room(node)
    node.put(ALICE, {"presence": "offline"})
    assert node.get(BOB, ALICE)[1]["presence"] == "offline"
    node.call("GET", V3 + "/sync", ALICE)
    assert node.get(BOB, ALICE)[1]["presence"] == "online"
    # set_presence=unavailable
    node.call("GET", V3 + "/sync", ALICE, query={"set_presence": "unavailable"})
    assert node.get(BOB, ALICE)[1]["presence"] == "unavailable"
    node.put(ALICE, {"presence": "online"})
    # alice keeps syncing but does nothing pro-active: unavailable after idle_ms (300 s)
    for _ in range(4):
        node.clock.advance(60)
        node.call("GET", V3 + "/sync", ALICE)
    assert node.get(BOB, ALICE)[1]["presence"] == "online"
    assert node.get(BOB, ALICE)[1]["currently_active"] is False  # quiet for over a minute
    for _ in range(2):
        node.clock.advance(60)
        node.call("GET", V3 + "/sync", ALICE)
    assert node.get(BOB, ALICE)[1]["presence"] == "unavailable"
    node.clock.advance(120)  # no /sync for longer than offline_ms (90 s)
    assert node.get(BOB, ALICE)[1]["presence"] == "offline"


def test_sending_an_event_is_activity():
    node = PresenceNode()
    room = shared_room(node)
    node.put(ALICE, {"presence": "unavailable"})
    node.send(ALICE, room, "back")
    body = node.get(BOB, ALICE)[1]
    assert body["presence"] == "online" and body["currently_active"] is True


def test_joining_a_room_brings_its_members_presence():
    node = PresenceNode()
    room = node.room(ALICE, preset="public_chat")
    node.put(ALICE, {"presence": "online", "status_msg": "in the lab"})
    since = node.do(CAROL)["next_batch"]
    node.member(CAROL, room, CAROL, "join")
    body = node.do(CAROL, since)
    assert room in body["rooms"]["join"]
    assert presence_of(body, ALICE)[0]["status_msg"] == "in the lab"


def test_status_messages_survive_a_restart():
    node = PresenceNode()
    node.put(ALICE, {"presence": "online", "status_msg": "on a school trip"})
    node.put(BOB, {"presence": "online", "status_msg": "temporary"})
    node.put(BOB, {"presence": "online", "status_msg": None})
    again = PresenceNode(db=node.db)
    body = again.get(ALICE, ALICE)[1]
    assert body["presence"] == "offline" and body["status_msg"] == "on a school trip"
    assert "status_msg" not in again.get(BOB, BOB)[1]
