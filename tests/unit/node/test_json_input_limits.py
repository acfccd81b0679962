"""One bound on every JSON input, seen from a client: over-deep documents and out-of-range
integers are 400 ``M_BAD_JSON`` where they arrive (messages, member content, account data,
filters), never stored, so nobody's ``/sync`` breaks later; NUL in a path or query parameter
is 400 ``M_INVALID_PARAM`` before it reaches a database column.

The rooms and sync endpoints are called in-process through the real router and request
objects, and every 200 body is encoded with orjson as the HTTP layer does."""

from __future__ import annotations

import json
from urllib.parse import quote

import orjson
import pytest
from support.deferreds import result_of

from federation.errors import BadJSON, MatrixError
from federation.json_limits import MAX_JSON_DEPTH
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.rooms.api import register_all as register_rooms
from node.sync.api import register_all as register_sync
from rooms_support import SERVER
from test_sync_handler import ALICE, BOB, Node

V3 = "/_matrix/client/v3"


def nested(depth: int) -> dict:
    """A message content object whose ``deep`` value nests ``depth`` levels in total."""
    value: object = "x"
    for _ in range(depth - 1):
        value = [value]
    return {"msgtype": "m.text", "body": "deep", "deep": value}


class Client:
    """HTTP-shaped calls: (status, JSON body) as the server would answer them."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.router = Router()
        register_rooms(self.router, node.rooms)
        register_sync(self.router, node.sync)

    def call(
        self,
        user: str,
        method: str,
        path: str,
        body: object = None,
        raw: bytes | None = None,
        query: dict | None = None,
    ) -> tuple[int, dict]:
        try:
            route, params, _ = self.router.match(method, path)
            assert route is not None, f"no route for {method} {path}"
            data = raw if raw is not None else b"" if body is None else orjson.dumps(body)
            req = ApiRequest(
                method, path, {k: [v] for k, v in (query or {}).items()}, {}, data, "127.0.0.1"
            )
            req.requester = Requester(user, "DEV")
            status, answer = result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()
        return status, orjson.loads(orjson.dumps(answer))  # as the HTTP layer renders it


@pytest.fixture
def client() -> Client:
    return Client(Node())


def shared_room(client: Client) -> str:
    room = client.node.room(ALICE, preset="public_chat")
    client.node.member(BOB, room, BOB, "join")
    return room


def _encode(value: object) -> bytes:
    """JSON text for values orjson will not write (integers beyond 64 bits)."""
    return json.dumps(value, separators=(",", ":")).encode()


def bad_json(answer: tuple[int, dict]) -> bool:
    return answer[0] == 400 and answer[1]["errcode"] == "M_BAD_JSON"


def test_deep_message_and_member_content_are_refused_and_sync_keeps_working(client):
    room_id = shared_room(client)
    room = quote(room_id)
    for i, depth in enumerate((MAX_JSON_DEPTH + 1, 250)):
        assert bad_json(
            client.call(ALICE, "PUT", f"{V3}/rooms/{room}/send/m.room.message/t{i}", nested(depth))
        )
        member = {"membership": "join", "deep": nested(depth)["deep"]}
        assert bad_json(
            client.call(
                ALICE, "PUT", f"{V3}/rooms/{room}/state/m.room.member/{quote(ALICE)}", member
            )
        )
    # A document exactly at the limit is a message like any other.
    status, _ = client.call(
        ALICE, "PUT", f"{V3}/rooms/{room}/send/m.room.message/ok", nested(MAX_JSON_DEPTH)
    )
    assert status == 200
    for user in (BOB, ALICE):
        status, body = client.call(user, "GET", f"{V3}/sync")
        assert status == 200
        timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
        assert [e["content"]["body"] for e in timeline if e["type"] == "m.room.message"] == ["deep"]


@pytest.mark.parametrize(
    "content",
    [
        {"deep": nested(250)["deep"]},
        {"n": 2**64 + 1},
        {"n": -(2**53)},
    ],
)
def test_account_data_refuses_deep_json_and_huge_integers(client, content):
    room = quote(shared_room(client))
    me = quote(ALICE)
    raw = _encode(content)
    for path in (
        f"{V3}/user/{me}/account_data/org.example.x",
        f"{V3}/user/{me}/rooms/{room}/account_data/org.example.x",
    ):
        assert bad_json(client.call(ALICE, "PUT", path, raw=raw))
        assert client.call(ALICE, "GET", path)[0] == 404  # nothing was stored
    status, _ = client.call(ALICE, "GET", f"{V3}/sync")
    assert status == 200


def test_filters_refuse_deep_json_and_huge_integers(client):
    me = quote(ALICE)
    deep = {"room": {"timeline": {"types": [nested(300)["deep"]]}}}
    for raw in (_encode(deep), b'{"room":{"timeline":{"limit":18446744073709551617}}}'):
        assert bad_json(client.call(ALICE, "POST", f"{V3}/user/{me}/filter", raw=raw))
        status, err = client.call(ALICE, "GET", f"{V3}/sync", query={"filter": raw.decode()})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = client.call(
        ALICE, "POST", f"{V3}/user/{me}/filter", {"room": {"timeline": {"limit": 5}}}
    )
    assert status == 200 and body["filter_id"]


def test_nul_in_path_parameters_is_invalid_param(client):
    room = quote(shared_room(client))
    me = quote(ALICE)
    nul = "%00"
    calls = [
        ("PUT", f"{V3}/user/{me}/account_data/org.a{nul}b", {}),
        ("PUT", f"{V3}/user/{me}/rooms/{room}/account_data/org.a{nul}b", {}),
        ("PUT", f"{V3}/rooms/{room}/send/m.room.message/txn{nul}", {"body": "x"}),
        ("PUT", f"{V3}/rooms/{room}/state/org.example.state/key{nul}", {}),
        ("PUT", f"{V3}/directory/room/{quote('#a')}{nul}b:{SERVER}", {"room_id": "!x"}),
        ("GET", f"{V3}/directory/room/{quote('#a')}{nul}b:{SERVER}", None),
    ]
    for method, path, body in calls:
        status, err = client.call(ALICE, method, path, body)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM"), path
        assert "NUL" in err["error"]
    # Other control characters in a state key stay legal (any string is a state key).
    status, _ = client.call(ALICE, "PUT", f"{V3}/rooms/{room}/state/org.example.state/a%0Ab", {})
    assert status == 200


def test_nul_in_query_parameters_is_invalid_param(client):
    room = quote(shared_room(client))
    for path, query in (
        (f"{V3}/rooms/{room}/members", {"membership": "join\x00"}),
        (f"{V3}/rooms/{room}/messages", {"dir": "b", "filter\x00": "{}"}),
        (f"{V3}/sync", {"set_presence": "online", "since": "s1\x00"}),
    ):
        status, err = client.call(ALICE, "GET", path, query=query)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM"), path
        assert "NUL" in err["error"]
    assert (
        client.call(BOB, "GET", f"{V3}/rooms/{room}/members", query={"membership": "join"})[0]
        == 200
    )


def test_router_refusal_keeps_the_route_name_for_metrics():
    router = Router()

    async def handler(req, roomId):  # pragma: no cover - never reached
        raise AssertionError("called")

    router.add("GET", V3 + "/rooms/{roomId}/x", handler)
    route, params, known = router.match("GET", V3 + "/rooms/%21a%00/x")
    assert known and params == {} and route.name == V3 + "/rooms/{roomId}/x"
    with pytest.raises(MatrixError) as info:
        result_of(route.handler(None))
    assert (info.value.http_status, info.value.errcode) == (400, "M_INVALID_PARAM")
    route, params, _ = router.match("GET", V3 + "/rooms/%21a%0A/x")
    assert route.handler is handler and params == {"roomId": "!a\n"}


def test_server_bodies_may_wrap_a_client_document_in_an_envelope():
    # A PDU in a transaction sits three levels down, its content four: a peer must accept
    # a transaction carrying the deepest content a client may send.
    content = nested(MAX_JSON_DEPTH)
    txn = orjson.dumps({"origin": "a.example", "pdus": [{"content": content}], "edus": []})
    fed = ApiRequest("PUT", "/_matrix/federation/v1/send/t1", {}, {}, txn, "127.0.0.1")
    assert fed.json()["pdus"][0]["content"] == content
    cli = ApiRequest("PUT", f"{V3}/rooms/!r/send/m.room.message/t", {}, {}, txn, "127.0.0.1")
    with pytest.raises(BadJSON, match="nested more than 100"):
        cli.json()
    # A transaction (PDUs and EDUs alike) deeper than the server limit is refused whole.
    for edu in (
        {"edu_type": "m.direct_to_device", "content": nested(250)},
        {"edu_type": "m.typing", "content": {"x": [2**64]}},
    ):
        hostile = _encode({"origin": "a.example", "pdus": [], "edus": [edu]})
        fed = ApiRequest("PUT", "/_matrix/federation/v1/send/t2", {}, {}, hostile, "127.0.0.1")
        with pytest.raises(BadJSON):
            fed.json()


def test_nul_in_create_room_alias_and_initial_state_is_invalid_param(client):
    for body in (
        {"room_alias_name": "a\x00b"},
        {"initial_state": [{"type": "org.s", "state_key": "k\x00", "content": {}}]},
        {"initial_state": [{"type": "org.s\x00", "content": {}}]},
    ):
        status, err = client.call(ALICE, "POST", f"{V3}/createRoom", body)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM"), body
    status, body = client.call(ALICE, "POST", f"{V3}/createRoom", {"room_alias_name": "a-b"})
    assert status == 200 and body["room_id"]


def test_nul_in_user_directory_search_term_is_invalid_param(client):
    status, err = client.call(
        ALICE, "POST", f"{V3}/user_directory/search", {"search_term": "bo\x00b"}
    )
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
