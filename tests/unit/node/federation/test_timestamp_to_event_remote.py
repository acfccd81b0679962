"""The client ``timestamp_to_event`` asks the room's other servers when this server's
copy of the room may lack the answer (client-server API "GET /timestamp_to_event",
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidtimestamp_to_event:
"If the server does not have all of the room history ... it can use the corresponding
federation endpoint to ask other servers"): here b.test joined a.test's room late, so
the history before its join exists only on a.test."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from federation.errors import MatrixError
from inprocess_federation_support import FedNode, Network, join_remote
from node.federation.remote.timestamp import RemoteTimestamps
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.rooms.api import timestamp as timestamp_api


def setup(visibility="shared"):
    net = Network()
    a, b = FedNode(net, "a.test"), FedNode(net, "b.test")
    alice = a.uid("alice")
    room = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    result_of(
        a.rooms.send_event(
            alice,
            room,
            "m.room.history_visibility",
            {"history_visibility": visibility},
            state_key="",
        )
    )
    early = []
    for text in ("first", "second"):
        a.reactor.advance(60)
        content = {"msgtype": "m.text", "body": text}
        early.append(result_of(a.rooms.send_event(alice, room, "m.room.message", content)))
    a.reactor.advance(60)
    b.reactor.advance(600)
    join_remote(a, b, room)
    # What node/federation/membership/wiring.py attaches on a federating node.
    b.rooms.hooks.timestamp_to_event = RemoteTimestamps(
        rooms=b.rooms, client=b.client, server_name="b.test", ingest=b.fed.ingest
    )
    router = Router()
    timestamp_api.register(router, b.rooms)
    return a, b, room, early, router


def ask(b, router, room, user, **query):
    path = f"/_matrix/client/v1/rooms/{room}/timestamp_to_event"
    route, params, _ = router.match("GET", path)
    req = ApiRequest("GET", path, {k: [str(v)] for k, v in query.items()}, {}, b"", "127.0.0.1")
    req.requester = Requester(user, "DEV")
    try:
        return result_of(route.handler(req, **params))
    except MatrixError as exc:
        return exc.http_status, exc.to_json()


def test_an_event_from_before_the_join_is_found_on_the_other_server():
    a, b, room, early, router = setup()
    bob = b.uid("bob")
    first = a.event(early[0])
    # b.test's copy starts at bob's join, after a gap: a.test is asked and its answer
    # fetched, checked and stored here.
    status, body = ask(b, router, room, bob, ts=first.origin_server_ts - 1, dir="f")
    assert (status, body) == (
        200,
        {"event_id": early[0], "origin_server_ts": first.origin_server_ts},
    )
    assert early[0] in result_of(b.rooms.get_events([early[0]]))
    # Backwards from just before the second message: the first one again.
    status, body = ask(b, router, room, bob, ts=a.event(early[1]).origin_server_ts - 1, dir="b")
    assert (status, body["event_id"]) == (200, early[0])
    # Asked only the servers of the room, with the federation endpoint.
    asked = [p for (o, d, m, p) in a.network.log if d == "a.test" and "timestamp_to_event" in p]
    assert asked and all(o == "b.test" for (o, d, m, p) in a.network.log if p in asked)


def test_a_local_answer_without_a_gap_asks_nobody():
    a, b, room, early, router = setup()
    bob = b.uid("bob")
    before = len(a.network.log)
    b.reactor.advance(60)
    content = {"msgtype": "m.text", "body": "after the join"}
    later = result_of(b.rooms.send_event(bob, room, "m.room.message", content))
    ts = b.event(later).origin_server_ts
    assert ask(b, router, room, bob, ts=ts, dir="f") == (
        200,
        {"event_id": later, "origin_server_ts": ts},
    )
    asked = [p for (_, _, _, p) in a.network.log[before:] if "timestamp_to_event" in p]
    assert asked == []


def test_nothing_anywhere_is_404_and_strangers_get_403():
    a, b, room, early, router = setup()
    bob = b.uid("bob")
    status, body = ask(b, router, room, bob, ts=2**62, dir="f")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = ask(b, router, room, b.uid("carol"), ts=0, dir="f")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_history_the_user_may_not_see_is_not_revealed():
    a, b, room, early, router = setup(visibility="joined")
    bob = b.uid("bob")
    first = a.event(early[0])
    status, body = ask(b, router, room, bob, ts=first.origin_server_ts - 1, dir="f")
    assert status == 200 and body["event_id"] not in early
