"""Ignoring users (client-server API "Ignoring Users"): what a user who ignores someone gets
from ``/sync`` (joined and left rooms, invites), ``/messages``, ``/context``,
``/relations``, ``/threads`` and ``/notifications``, and that others are not affected.

A real ``RoomService``, ``SyncService`` and ``PushService`` on in-memory SQLite, composed
as ``node/app.py`` does, called through the real routers and request objects.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
import pytest
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import task

import schema.push  # noqa: F401 - registers the push tables before InlineDB creates them
import schema.sync  # noqa: F401 - registers the sync tables
from federation.errors import MatrixError
from node.clock import ReactorClock
from node.filtering import DEFAULT_FILTER
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.push.api import register_all as register_push
from node.push.service import PushService
from node.rooms.api import register_all as register_rooms
from node.rooms.ignored import MAX_IGNORED
from node.stream_tokens import parse_sync_token
from node.sync import ignored
from node.sync.api import register_all as register_sync
from node.sync.handler import SyncParams
from node.sync.notifier import SyncNotifier
from node.sync.push_link import attach_push
from node.sync.service import SyncService
from rooms_support import SERVER, FakeAccounts, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


class Node:
    def __init__(self, db: InlineDB | None = None) -> None:
        self.reactor = task.Clock()
        self.reactor.advance(1_700_000_000)
        clock = ReactorClock(self.reactor)
        self.db = db or InlineDB()
        notifier = SyncNotifier(clock)
        users = ("alice", "bob", "carol", "dave")
        self.rooms = make_service(
            self.db, clock=clock, notifier=notifier, accounts=FakeAccounts(users)
        )
        self.rooms.ignored.load_sync()
        self.push = PushService(db=self.db, clock=clock, server_name=SERVER, max_pushers=3)
        self.push.rules.load_sync()
        self.push.pushers.load_sync()
        self.push.attach_rooms(self.rooms, gateway=None)
        self.sync = SyncService(
            db=self.db,
            clock=clock,
            server_name=SERVER,
            accounts=FakeAccounts(users),
            rooms=self.rooms,
            notifier=notifier,
        )
        attach_push(self.sync, self.push)
        ignored.attach(self.sync.account_data, self.rooms)  # as node/sync/wiring.py does
        self.router = Router()
        register_sync(self.router, self.sync)
        register_rooms(self.router, self.rooms)
        register_push(self.router, self.push)

    def call(self, method, path, user=ALICE, body=None):
        path_only, _, query = path.partition("?")
        route, params, _ = self.router.match(method, path_only)
        assert route is not None, path
        args: dict = {}
        for pair in filter(None, query.split("&")):
            k, _, v = pair.partition("=")
            args.setdefault(k, []).append(v)
        raw = b"" if body is None else orjson.dumps(body)
        req = ApiRequest(method, path_only, args, {}, raw, "127.0.0.1")
        req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    def ignore(self, user, *others):
        body = {"ignored_users": {o: {} for o in others}}
        path = f"{V3}/user/{quote(user)}/account_data/m.ignored_user_list"
        assert self.call("PUT", path, user, body) == (200, {})

    def room(self, members=(BOB, CAROL)):
        self.reactor.advance(0.01)
        room_id = result_of(self.rooms.create_room(ALICE, {"preset": "public_chat"}))
        for m in members:
            self.member(m, room_id, m, "join")
        return room_id

    def member(self, sender, room_id, target, membership):
        result_of(self.rooms.update_membership(sender, room_id, target, membership))
        self.flush()

    def send(self, user, room_id, body, **content):
        content = {"msgtype": "m.text", "body": body, **content}
        event_id = result_of(self.rooms.send_event(user, room_id, "m.room.message", content))
        self.flush()
        return event_id

    def flush(self):
        if self.push.evaluator is not None:
            self.push.evaluator.flush()

    def sync_as(self, user, since=None):
        params = SyncParams(
            requester=Requester(user, "DEV"),
            filter=DEFAULT_FILTER,
            since=parse_sync_token(since) if since else None,
        )
        return result_of(self.sync.handler.sync(params))


def bodies(events):
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"]


@pytest.fixture
def node():
    return Node()


def test_sync_leaves_out_ignored_senders_messages_but_not_their_state(node):
    room = node.room()
    node.send(BOB, room, "bob one")
    node.send(CAROL, room, "carol one")
    node.ignore(ALICE, BOB)
    first = node.sync_as(ALICE)
    timeline = first["rooms"]["join"][room]["timeline"]["events"]
    assert bodies(timeline) == ["carol one"]
    # Bob's join (a state event) is still there.
    assert any(e["type"] == "m.room.member" and e["state_key"] == BOB for e in timeline)
    # The account data itself is in the answer, as any account data.
    ad = {e["type"]: e["content"] for e in first["account_data"]["events"]}
    assert ad["m.ignored_user_list"] == {"ignored_users": {BOB: {}}}
    node.send(BOB, room, "bob two")
    node.send(CAROL, room, "carol two")
    nxt = node.sync_as(ALICE, first["next_batch"])
    assert bodies(nxt["rooms"]["join"][room]["timeline"]["events"]) == ["carol two"]
    # Carol, who ignores nobody, sees everything.
    carol = node.sync_as(CAROL)["rooms"]["join"][room]["timeline"]["events"]
    assert bodies(carol) == ["bob one", "carol one", "bob two", "carol two"]


def test_a_timeline_still_fills_up_to_its_limit(node):
    room = node.room()
    for i in range(3):
        node.send(CAROL, room, f"c{i}")
    for i in range(12):
        node.send(BOB, room, f"b{i}")
    node.ignore(ALICE, BOB)
    flt = orjson.dumps({"room": {"timeline": {"limit": 3}}}).decode()
    status, body = node.call("GET", f"{V3}/sync?filter={flt}")
    assert status == 200
    assert bodies(body["rooms"]["join"][room]["timeline"]["events"]) == ["c0", "c1", "c2"]


def test_unignoring_resumes_without_replaying_what_was_missed(node):
    room = node.room()
    node.ignore(ALICE, BOB)
    first = node.sync_as(ALICE)
    node.send(BOB, room, "while ignored")
    second = node.sync_as(ALICE, first["next_batch"])
    assert bodies(second["rooms"]["join"].get(room, {}).get("timeline", {}).get("events", [])) == []
    node.ignore(ALICE)  # an empty list: nobody ignored
    third = node.sync_as(ALICE, second["next_batch"])
    assert third["account_data"]["events"][0]["content"] == {"ignored_users": {}}
    node.send(BOB, room, "after")
    fourth = node.sync_as(ALICE, third["next_batch"])
    assert bodies(fourth["rooms"]["join"][room]["timeline"]["events"]) == ["after"]
    # A fresh sync (what the spec tells the client to do) has the missed message again.
    fresh = node.sync_as(ALICE)["rooms"]["join"][room]["timeline"]["events"]
    assert bodies(fresh) == ["while ignored", "after"]


def test_invites_from_ignored_users_are_not_sent(node):
    node.ignore(CAROL, BOB)
    first = node.sync_as(CAROL)
    node.reactor.advance(0.01)
    bobs = result_of(node.rooms.create_room(BOB, {"preset": "private_chat"}))
    node.member(BOB, bobs, CAROL, "invite")
    node.reactor.advance(0.01)
    alices = result_of(node.rooms.create_room(ALICE, {"preset": "private_chat"}))
    node.member(ALICE, alices, CAROL, "invite")
    nxt = node.sync_as(CAROL, first["next_batch"])
    assert set(nxt["rooms"]["invite"]) == {alices}
    assert set(node.sync_as(CAROL)["rooms"]["invite"]) == {alices}
    # Dave, who ignores nobody, gets Bob's invite.
    node.member(BOB, bobs, uid("dave"), "invite")
    assert bobs in node.sync_as(uid("dave"))["rooms"]["invite"]
    # No push notification for it either.
    status, body = node.call("GET", f"{V3}/notifications", CAROL)
    assert status == 200
    assert [n["room_id"] for n in body["notifications"]] == [alices]


def test_left_rooms_timeline_leaves_out_ignored_senders(node):
    room = node.room()
    node.send(BOB, room, "bob")
    node.send(CAROL, room, "carol")
    node.ignore(ALICE, BOB)
    first = node.sync_as(BOB)
    node.member(BOB, room, BOB, "leave")
    node.ignore(BOB, CAROL)
    out = node.sync_as(BOB, first["next_batch"])
    timeline = out["rooms"]["leave"][room]["timeline"]["events"]
    assert bodies(timeline) == []
    flt = orjson.dumps({"room": {"include_leave": True}}).decode()
    status, full = node.call("GET", f"{V3}/sync?filter={flt}", BOB)
    assert bodies(full["rooms"]["leave"][room]["timeline"]["events"]) == ["bob"]


def test_messages_and_context_leave_out_ignored_senders(node):
    room = node.room()
    node.send(BOB, room, "b1")
    middle = node.send(CAROL, room, "c1")
    node.send(BOB, room, "b2")
    node.send(CAROL, room, "c2")
    node.ignore(ALICE, BOB)
    r = quote(room)
    status, page = node.call("GET", f"{V3}/rooms/{r}/messages?dir=b&limit=10")
    assert status == 200
    assert bodies(page["chunk"]) == ["c2", "c1"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == BOB for e in page["chunk"])
    status, ctx = node.call("GET", f"{V3}/rooms/{r}/context/{quote(middle)}?limit=10")
    assert status == 200
    assert bodies(ctx["events_before"] + ctx["events_after"]) == ["c2"]
    _, carols = node.call("GET", f"{V3}/rooms/{r}/messages?dir=b&limit=10", CAROL)
    assert bodies(carols["chunk"]) == ["c2", "b2", "c1", "b1"]


def test_relations_and_threads_leave_out_ignored_senders(node):
    room = node.room()
    root = node.send(CAROL, room, "root")
    thread = {"rel_type": "m.thread", "event_id": root}
    node.send(BOB, room, "bob reply", **{"m.relates_to": thread})
    node.send(CAROL, room, "carol reply", **{"m.relates_to": thread})
    bob_root = node.send(BOB, room, "bob root")
    node.send(
        CAROL, room, "on bob", **{"m.relates_to": {"rel_type": "m.thread", "event_id": bob_root}}
    )
    node.ignore(ALICE, BOB)
    r = quote(room)
    status, rel = node.call("GET", f"{V1}/rooms/{r}/relations/{quote(root)}")
    assert status == 200 and bodies(rel["chunk"]) == ["carol reply"]
    status, threads = node.call("GET", f"{V1}/rooms/{r}/threads")
    assert status == 200
    assert [t["event_id"] for t in threads["chunk"]] == [root]
    _, carols = node.call("GET", f"{V1}/rooms/{r}/threads", CAROL)
    assert {t["event_id"] for t in carols["chunk"]} == {root, bob_root}


def test_notifications_leave_out_ignored_senders(node):
    room = node.room()
    node.ignore(ALICE, BOB)
    node.send(BOB, room, "bob")
    node.send(CAROL, room, "carol")
    status, body = node.call("GET", f"{V3}/notifications")
    assert status == 200
    assert [n["event"]["content"]["body"] for n in body["notifications"]] == ["carol"]
    _, theirs = node.call("GET", f"{V3}/notifications", CAROL)
    assert [n["event"]["content"]["body"] for n in theirs["notifications"]] == ["bob"]


def test_the_list_is_capped_and_survives_a_restart(node):
    too_many = {"ignored_users": {uid(f"u{i}"): {} for i in range(MAX_IGNORED + 1)}}
    path = f"{V3}/user/{quote(ALICE)}/account_data/m.ignored_user_list"
    status, err = node.call("PUT", path, ALICE, too_many)
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    assert node.call("GET", path)[1]["errcode"] == "M_NOT_FOUND"  # nothing was stored
    node.ignore(ALICE, BOB)
    restarted = Node(node.db)
    room = restarted.room()
    restarted.send(BOB, room, "bob")
    restarted.send(CAROL, room, "carol")
    assert bodies(restarted.sync_as(ALICE)["rooms"]["join"][room]["timeline"]["events"]) == [
        "carol"
    ]


def test_initial_sync_of_the_old_api_leaves_out_ignored_senders(node):
    from node.sync.api import old_sync

    old_sync.register(node.router, node.sync)
    room = node.room()
    node.send(BOB, room, "bob")
    node.send(CAROL, room, "carol")
    node.reactor.advance(0.01)
    bobs = result_of(node.rooms.create_room(BOB, {"preset": "private_chat"}))
    node.member(BOB, bobs, ALICE, "invite")
    node.ignore(ALICE, BOB)
    status, body = node.call("GET", f"{V3}/initialSync?limit=10")
    assert status == 200
    by_id = {r["room_id"]: r for r in body["rooms"]}
    assert set(by_id) == {room}
    assert bodies(by_id[room]["messages"]["chunk"]) == ["carol"]


def test_the_old_events_stream_of_one_room_leaves_out_ignored_senders(node):
    from node.sync.api import old_sync

    old_sync.register(node.router, node.sync)
    room = node.room()
    node.ignore(ALICE, BOB)
    status, start = node.call("GET", f"{V3}/events?room_id={room}&timeout=0")
    assert status == 200
    node.send(BOB, room, "bob")
    node.send(CAROL, room, "carol")
    status, body = node.call("GET", f"{V3}/events?room_id={room}&timeout=0&from={start['end']}")
    assert status == 200
    assert bodies(body["chunk"]) == ["carol"]
