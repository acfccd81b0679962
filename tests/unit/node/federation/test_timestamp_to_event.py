"""``GET /_matrix/federation/v1/timestamp_to_event/{roomId}`` as another server sees it."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from federation.transport import endpoints as E
from inprocess_federation_support import FedNode, Network


def ask(b, room_id, **query):
    return result_of(
        b.client.request("a.test", "GET", E.TIMESTAMP_TO_EVENT.path(room_id), None, query)
    )


def setup():
    net = Network()
    a, b = FedNode(net, "a.test"), FedNode(net, "b.test")
    alice = a.uid("alice")
    room = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    return a, b, alice, room


def say(a, alice, room, text):
    content = {"msgtype": "m.text", "body": text}
    return result_of(a.rooms.send_event(alice, room, "m.room.message", content))


def test_only_servers_that_may_read_the_room_get_an_answer():
    a, b, alice, room = setup()
    hidden = say(a, alice, room, "before")
    ts = a.event(hidden).origin_server_ts
    status, err = ask(b, room, ts=str(ts), dir="f")
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    result_of(
        a.rooms.send_event(
            alice,
            room,
            "m.room.history_visibility",
            {"history_visibility": "world_readable"},
            state_key="",
        )
    )
    first = say(a, alice, room, "for everyone")
    ts = a.event(first).origin_server_ts
    # the message from before is not visible to b.test: the answer skips it
    status, body = ask(b, room, ts=str(a.event(hidden).origin_server_ts), dir="f")
    assert status == 200 and body["event_id"] != hidden
    status, body = ask(b, room, ts=str(ts), dir="f")
    assert status == 200
    assert body == {"event_id": first, "origin_server_ts": ts}
    status, err = ask(b, room, ts=str(ts + 10_000_000), dir="f")
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    status, err = ask(b, room, ts=str(ts), dir="sideways")
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = ask(b, room, dir="f")
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
    status, err = ask(b, "!unknown:a.test", ts=str(ts), dir="f")
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
