"""Invites that arrive over federation notify the invitee like local ones
(client-server API "Push Rules" ``.m.rule.invite_for_me``,
https://spec.matrix.org/v1.16/client-server-api/#default-override-rules): an invite into
a room none of our users is in is stored out of band (server-server API "Inviting to a
room"), and the invitee's pushers, ``GET /notifications`` and push counts see it."""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "federation"))

import orjson
import pytest
from support.deferreds import result_of

import schema.push  # noqa: F401 - registers the push tables before InlineDB creates them
from federation.keys import SigningKey
from fedout_support import FedNode, link, make_clock
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.push.api import register_all
from node.push.service import PushService
from push_support import FakeGateway

A, B = "a.test", "b.test"
URL = "https://push.example.org/_matrix/push/v1/notify"


@pytest.fixture
def net():
    rc = make_clock()
    network: dict = {}
    a = FedNode(A, SigningKey("a1", b"\x0a" * 32), network, rc)
    b = FedNode(B, SigningKey("b1", b"\x0b" * 32), network, rc, users=("bob", "carol"))
    link(a, b)
    gateway = FakeGateway()
    push = PushService(db=b.db, clock=b.clock, server_name=B)
    push.rules.load_sync()
    push.pushers.load_sync()
    push.attach_rooms(b.rooms, gateway=gateway)
    router = Router()
    register_all(router, push)
    return a, b, push, router, gateway


def call(router, user, method, path, body=None):
    route, params, _ = router.match(method, path)
    raw = b"" if body is None else orjson.dumps(body)
    req = ApiRequest(method, path, {}, {}, raw, "127.0.0.1")
    req.requester = Requester(user, "DEV")
    return result_of(route.handler(req, **params))


def test_a_remote_invite_is_pushed_and_listed_for_the_invitee(net):
    a, b, push, router, gateway = net
    alice, carol = a.uid("alice"), b.uid("carol")
    pusher = {
        "kind": "http",
        "app_id": "org.example.app",
        "pushkey": "carol-phone",
        "app_display_name": "Example",
        "device_display_name": "Phone",
        "lang": "en",
        "data": {"url": URL},
    }
    assert call(router, carol, "POST", "/_matrix/client/v3/pushers/set", pusher) == (200, {})
    room_id = result_of(a.rooms.create_room(alice, {"preset": "private_chat", "name": "Staff"}))
    result_of(a.ms.invite_user(alice, room_id, carol))
    push.evaluator.flush()
    b.reactor.advance(1)

    # The invitee's push gateway is told, as for a local invite.
    [(url, body)] = gateway.requests
    note = body["notification"]
    assert url == URL and note["room_id"] == room_id
    assert note["type"] == "m.room.member" and note["sender"] == alice
    assert note["content"]["membership"] == "invite" and note["user_is_target"] is True
    assert note["counts"] == {"unread": 1}
    assert note["devices"][0]["tweaks"] == {"sound": "default"}

    # GET /notifications lists it.
    status, listed = call(router, carol, "GET", "/_matrix/client/v3/notifications")
    assert status == 200
    [item] = listed["notifications"]
    assert item["room_id"] == room_id and item["read"] is False
    assert item["event"]["type"] == "m.room.member"
    assert item["event"]["state_key"] == carol

    # Nobody else on the invitee's server is notified.
    status, others = call(router, b.uid("bob"), "GET", "/_matrix/client/v3/notifications")
    assert (status, others["notifications"]) == (200, [])
