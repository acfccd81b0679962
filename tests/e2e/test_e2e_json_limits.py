"""E2E: one bound on every JSON input, against a real node on SQLite and PostgreSQL.

JSON nested 250 levels deep - a message, a pupil's own membership content, account data, a
filter - and integers beyond 2^64 are 400 ``M_BAD_JSON`` where they arrive, so the other
members' ``/sync`` keeps answering 200 (it used to answer 500 once such content was stored:
orjson cannot render 255 levels).  NUL in a room alias, transaction ID, state key or
account-data type is 400 ``M_INVALID_PARAM`` (it used to be a 500 from PostgreSQL, which
cannot store NUL in a text column).  The limits are in federation/json_limits.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from e2e_helpers import api

V3 = "/_matrix/client/v3"


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module")
def room(node: Any) -> dict:
    """A public room of alice's that bob has joined."""
    alice = node.register("alice")
    bob = node.register("bob")
    status, body = api(
        node,
        "POST",
        f"{V3}/createRoom",
        token=alice["access_token"],
        json_body={"preset": "public_chat"},
    )
    assert status == 200, body
    room_id = body["room_id"]
    status, body = api(
        node, "POST", f"{V3}/join/{quote(room_id)}", token=bob["access_token"], json_body={}
    )
    assert status == 200, body
    return {"id": room_id, "q": quote(room_id), "alice": alice, "bob": bob}


def refused(answer: tuple[int, Any], errcode: str) -> bool:
    status, body = answer
    return status == 400 and isinstance(body, dict) and body.get("errcode") == errcode


def test_deep_json_and_huge_integers_are_bad_json_and_sync_still_works(node, room):
    alice, bob = room["alice"], room["bob"]
    token, me = alice["access_token"], quote(alice["user_id"])
    nested = deep(250)
    hostile = [
        (
            "PUT",
            f"{V3}/rooms/{room['q']}/send/m.room.message/deep1",
            {"msgtype": "m.text", "body": "deep", "x": nested},
        ),
        (
            "PUT",
            f"{V3}/rooms/{room['q']}/state/m.room.member/{me}",
            {"membership": "join", "x": nested},
        ),
        ("PUT", f"{V3}/user/{me}/account_data/org.example.deep", {"x": nested}),
        ("PUT", f"{V3}/user/{me}/rooms/{room['q']}/account_data/org.example.deep", {"x": nested}),
        ("POST", f"{V3}/user/{me}/filter", {"room": {"timeline": {"types": nested}}}),
        ("PUT", f"{V3}/user/{me}/account_data/org.example.big", {"n": 2**64 + 1}),
        ("POST", f"{V3}/user/{me}/filter", {"room": {"timeline": {"limit": 2**64 + 1}}}),
    ]
    for method, path, body in hostile:
        answer = api(node, method, path, token=token, json_body=body)
        assert refused(answer, "M_BAD_JSON"), (method, path, answer)
    status, body = api(
        node,
        "GET",
        f"{V3}/sync?filter="
        + quote('{"room":{"timeline":{"types":' + str(nested).replace("'", '"') + "}}}"),
        token=token,
    )
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    # The room and everyone's /sync are unaffected.
    status, _ = api(
        node,
        "PUT",
        f"{V3}/rooms/{room['q']}/send/m.room.message/fine",
        token=token,
        json_body={"msgtype": "m.text", "body": "still here"},
    )
    assert status == 200
    for user in (bob, alice):
        status, body = api(node, "GET", f"{V3}/sync", token=user["access_token"])
        assert status == 200, body
        events = body["rooms"]["join"][room["id"]]["timeline"]["events"]
        assert "still here" in [e["content"].get("body") for e in events]


def test_nul_in_identifiers_is_invalid_param_not_500(node, room):
    token = room["alice"]["access_token"]
    me = quote(room["alice"]["user_id"])
    alias = quote(f"#a\x00b:{node.server_name}")
    hostile = [
        ("PUT", f"{V3}/directory/room/{alias}", {"room_id": room["id"]}),
        ("GET", f"{V3}/directory/room/{alias}", None),
        (
            "PUT",
            f"{V3}/rooms/{room['q']}/send/m.room.message/t%00x",
            {"msgtype": "m.text", "body": "x"},
        ),
        ("PUT", f"{V3}/rooms/{room['q']}/state/org.example.s/k%00", {}),
        ("PUT", f"{V3}/user/{me}/account_data/org.a%00b", {}),
        ("PUT", f"{V3}/user/{me}/rooms/{room['q']}/account_data/org.a%00b", {}),
        ("GET", f"{V3}/rooms/{room['q']}/messages?dir=b&from=%00", None),
        ("POST", f"{V3}/user_directory/search", {"search_term": "bo\x00b"}),
        ("POST", f"{V3}/createRoom", {"room_alias_name": "a\x00b"}),
        (
            "POST",
            f"{V3}/createRoom",
            {"initial_state": [{"type": "org.example.s", "state_key": "k\x00", "content": {}}]},
        ),
    ]
    for method, path, body in hostile:
        answer = api(node, method, path, token=token, json_body=body)
        assert answer[0] == 400, (method, path, answer)
        assert answer[1]["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON"), (path, answer)
    # The alias, message and state never reached the database; the room still works.
    status, _ = api(
        node,
        "PUT",
        f"{V3}/directory/room/{quote('#ab:' + node.server_name)}",
        token=token,
        json_body={"room_id": room["id"]},
    )
    assert status == 200
    status, body = api(
        node, "POST", f"{V3}/user_directory/search", token=token, json_body={"search_term": "bob"}
    )
    assert status == 200 and "results" in body, body
    status, body = api(node, "GET", f"{V3}/sync", token=room["bob"]["access_token"])
    assert status == 200, body
