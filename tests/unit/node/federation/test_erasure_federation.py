"""An erased account's events over federation (client-server API "Account deactivation",
``erase``: "any users (or servers) which join the room after the erasure request are served
redacted copies of the events sent by this account"): ``/event``, ``/backfill`` and
``/get_missing_events`` between in-process nodes."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from inprocess_federation_support import FedNode, Network, join_remote

V1 = "/_matrix/federation/v1"


def _get(src, dst, path, query=None):
    return result_of(src.client.request(dst.server_name, "GET", path, query=query))


def test_servers_joining_after_the_erasure_get_redacted_copies():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    c = FedNode(net, "c.test")
    alice = a.uid("alice")
    room_id = result_of(a.rooms.create_room(alice, {"preset": "public_chat"}))
    join_remote(a, b, room_id)
    m = result_of(a.rooms.send_event(alice, room_id, "m.room.message", {"body": "mine"}))
    # Alice's account is erased now (as the deactivation records it).
    a.rooms.erasure.erased[alice] = a.rooms.current_stream_ordering()
    join_remote(a, c, room_id)
    status, body = _get(b, a, f"{V1}/event/{quote(m)}")  # b was in the room before
    assert status == 200 and body["pdus"][0]["content"] == {"body": "mine"}
    status, body = _get(c, a, f"{V1}/event/{quote(m)}")  # c joined afterwards
    assert status == 200 and body["pdus"][0]["content"] == {}
    status, body = _get(c, a, f"{V1}/backfill/{quote(room_id)}", {"v": [m], "limit": ["5"]})
    assert status == 200
    by_type = {p["type"]: p for p in body["pdus"]}
    assert by_type["m.room.message"]["content"] == {}
    # b's backfill keeps the original; the stored event is unchanged.
    status, body = _get(b, a, f"{V1}/backfill/{quote(room_id)}", {"v": [m], "limit": ["5"]})
    assert {p["type"]: p for p in body["pdus"]}["m.room.message"]["content"] == {"body": "mine"}
    assert result_of(a.rooms.get_event(m)).content == {"body": "mine"}
