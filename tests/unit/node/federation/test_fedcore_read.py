"""The federation read endpoints, called with signed requests between in-process nodes:
event, state, state_ids, backfill, get_missing_events, event_auth, query/profile,
query/directory, publicRooms and the federation media download -- and who may read."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from federation.transport.errors import RemoteError
from inprocess_federation_support import FedNode, Network, join_remote

V1 = "/_matrix/federation/v1"


def _get(src, dst, path, query=None):
    return result_of(src.client.request(dst.server_name, "GET", path, query=query))


def _post(src, dst, path, body):
    return result_of(src.client.request(dst.server_name, "POST", path, body))


def _setup(**kw):
    net = Network()
    a = FedNode(net, "a.test", **kw)
    b = FedNode(net, "b.test")
    c = FedNode(net, "c.test")
    room_id = result_of(
        a.rooms.create_room(
            a.uid("alice"),
            {
                "preset": "public_chat",
                "name": "Aula",
                "room_alias_name": "aula",
                "visibility": "public",
            },
        )
    )
    join_remote(a, b, room_id)
    return net, a, b, c, room_id


def test_event_endpoint_and_who_may_read():
    net, a, b, c, room_id = _setup()
    m = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "hi"}))
    status, body = _get(b, a, f"{V1}/event/{quote(m)}")
    assert status == 200 and body["origin"] == "a.test"
    assert [p["content"] for p in body["pdus"]] == [{"body": "hi"}]
    # c has no member in the room
    status, body = _get(c, a, f"{V1}/event/{quote(m)}")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = _get(b, a, f"{V1}/event/{quote('$nope')}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_history_visibility_joined_redacts_events_from_before_the_join():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    room_id = result_of(
        a.rooms.create_room(
            a.uid("alice"),
            {
                "preset": "public_chat",
                "initial_state": [
                    {
                        "type": "m.room.history_visibility",
                        "state_key": "",
                        "content": {"history_visibility": "joined"},
                    }
                ],
            },
        )
    )
    early = result_of(
        a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "before b"})
    )
    join_remote(a, b, room_id)
    late = result_of(
        a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "after b"})
    )
    _, body = _get(b, a, f"{V1}/event/{quote(early)}")
    assert body["pdus"][0]["content"] == {}
    _, body = _get(b, a, f"{V1}/event/{quote(late)}")
    assert body["pdus"][0]["content"] == {"body": "after b"}


def test_state_and_state_ids_are_the_state_before_the_event():
    net, a, b, c, room_id = _setup()
    t = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.topic", {"topic": "T"}, ""))
    expected = result_of(a.rooms.state_store.get_state_ids_before(t))
    assert ("m.room.topic", "") not in expected
    status, ids = _get(b, a, f"{V1}/state_ids/{quote(room_id)}", {"event_id": t})
    assert status == 200 and sorted(ids["pdu_ids"]) == sorted(expected.values())
    create_id = a.room(room_id).get("m.room.create").event_id
    assert create_id in ids["auth_chain_ids"]
    status, full = _get(b, a, f"{V1}/state/{quote(room_id)}", {"event_id": t})
    assert status == 200
    assert sorted(p["type"] for p in full["pdus"]) == sorted(k[0] for k in expected)
    assert len(full["auth_chain"]) == len(ids["auth_chain_ids"])
    status, err = _get(b, a, f"{V1}/state_ids/{quote(room_id)}")
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
    status, err = _get(c, a, f"{V1}/state_ids/{quote(room_id)}", {"event_id": t})
    assert status == 403


def test_backfill_and_get_missing_events():
    net, a, b, c, room_id = _setup()
    sent = [
        result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": str(i)}))
        for i in range(6)
    ]
    status, body = _get(b, a, f"{V1}/backfill/{quote(room_id)}", {"v": [sent[-1]], "limit": 3})
    assert status == 200
    ids = [
        result_of(a.rooms.get_event(p["event_id"])) if "event_id" in p else None
        for p in body["pdus"]
    ]
    from federation.events.model import Event

    rv = a.room(room_id).room_version
    got = [Event(p, rv).event_id for p in body["pdus"]]
    assert got == [sent[5], sent[4], sent[3]]
    assert ids is not None
    status, body = _post(
        b,
        a,
        f"{V1}/get_missing_events/{quote(room_id)}",
        {"earliest_events": [sent[1]], "latest_events": [sent[5]], "limit": 10},
    )
    assert status == 200
    got = [Event(p, rv).event_id for p in body["events"]]
    assert got == sent[2:5]
    status, body = _post(
        c,
        a,
        f"{V1}/get_missing_events/{quote(room_id)}",
        {"earliest_events": [], "latest_events": [sent[5]]},
    )
    assert status == 403


def test_event_auth_is_the_auth_chain():
    net, a, b, c, room_id = _setup()
    m = result_of(a.rooms.send_event(a.uid("alice"), room_id, "m.room.message", {"body": "x"}))
    status, body = _get(b, a, f"{V1}/event_auth/{quote(room_id)}/{quote(m)}")
    assert status == 200
    types = sorted(p["type"] for p in body["auth_chain"])
    assert "m.room.create" in types and "m.room.power_levels" in types
    assert "m.room.member" in types


def test_query_profile_and_directory():
    net, a, b, c, room_id = _setup()
    status, body = _get(b, a, f"{V1}/query/profile", {"user_id": a.uid("alice")})
    assert (status, body) == (200, {"displayname": "alice"})
    status, body = _get(
        b, a, f"{V1}/query/profile", {"user_id": a.uid("alice"), "field": "displayname"}
    )
    assert (status, body) == (200, {"displayname": "alice"})
    status, body = _get(
        b, a, f"{V1}/query/profile", {"user_id": a.uid("alice"), "field": "avatar_url"}
    )
    assert status == 404
    status, body = _get(b, a, f"{V1}/query/profile", {"user_id": a.uid("nobody")})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = _get(b, a, f"{V1}/query/profile", {"user_id": b.uid("bob")})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = _get(b, a, f"{V1}/query/directory", {"room_alias": "#aula:a.test"})
    assert status == 200 and body == {"room_id": room_id, "servers": ["a.test", "b.test"]}
    status, body = _get(b, a, f"{V1}/query/directory", {"room_alias": "#nope:a.test"})
    assert status == 404


def test_public_rooms():
    net, a, b, c, room_id = _setup()
    status, body = _get(c, a, f"{V1}/publicRooms")
    assert status == 200 and [r["room_id"] for r in body["chunk"]] == [room_id]
    assert body["chunk"][0]["num_joined_members"] == 2
    status, body = _post(
        c, a, f"{V1}/publicRooms", {"filter": {"generic_search_term": "aula"}, "limit": 5}
    )
    assert status == 200 and [r["name"] for r in body["chunk"]] == ["Aula"]
    status, body = _post(c, a, f"{V1}/publicRooms", {"filter": {"generic_search_term": "x"}})
    assert body["chunk"] == []


def test_media_download_is_multipart_mixed(tmp_path):
    net = Network()
    a = FedNode(net, "a.test", media_dir=str(tmp_path))
    b = FedNode(net, "b.test")
    mxc = result_of(a.media.upload(a.uid("alice"), "text/plain", "note.txt", b"hello"))
    media_id = mxc.rsplit("/", 1)[1]
    status, resp = _get(b, a, f"{V1}/media/download/{media_id}")
    assert status == 200
    ctype = resp.content_type
    assert ctype.startswith("multipart/mixed; boundary=")
    boundary = ctype.split("boundary=", 1)[1].encode()
    parts = resp.body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1].strip() == b"--"
    meta, media = parts[1], parts[2]
    assert meta == b"\r\nContent-Type: application/json\r\n\r\n{}\r\n"
    head, _, data = media.partition(b"\r\n\r\n")
    assert b"Content-Type: text/plain" in head and b'filename="note.txt"' in head
    assert data == b"hello\r\n"
    status, body = _get(b, a, f"{V1}/media/download/nonexistent")
    assert status == 404


def test_remote_errors_surface_as_remote_error():
    net, a, b, c, room_id = _setup()
    try:
        result_of(b.client.request_ok("a.test", "GET", f"{V1}/event/{quote('$x')}"))
    except RemoteError as exc:
        assert exc.status == 404 and exc.errcode == "M_NOT_FOUND"
    else:  # pragma: no cover
        raise AssertionError("expected RemoteError")
