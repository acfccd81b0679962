"""The sync area's endpoints through the real router and request objects (no HTTP)."""

from __future__ import annotations

import orjson
import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.sync.api import register_all
from test_sync_handler import ALICE, BOB, CAROL, Node


class Api:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.router = Router()
        register_all(self.router, node.sync)

    def call(self, method, path, user=ALICE, body=None, query=None, raw=None):
        route, params, _ = self.router.match(method, path)
        assert route is not None, f"no route for {method} {path}"
        data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
        args = {k: [v] for k, v in (query or {}).items()}
        req = ApiRequest(method, path, args, {}, data, "127.0.0.1")
        req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()


@pytest.fixture
def api():
    return Api(Node())


V3 = "/_matrix/client/v3"


def test_routes_are_the_spec_paths(api):
    names = {(r.method, r.template) for r in api.router.routes()}
    assert names == {
        ("GET", V3 + "/sync"),
        ("POST", V3 + "/user/{userId}/filter"),
        ("GET", V3 + "/user/{userId}/filter/{filterId}"),
        ("PUT", V3 + "/rooms/{roomId}/typing/{userId}"),
        ("POST", V3 + "/rooms/{roomId}/receipt/{receiptType}/{eventId}"),
        ("POST", V3 + "/rooms/{roomId}/read_markers"),
        ("PUT", V3 + "/user/{userId}/account_data/{type}"),
        ("GET", V3 + "/user/{userId}/account_data/{type}"),
        ("PUT", V3 + "/user/{userId}/rooms/{roomId}/account_data/{type}"),
        ("GET", V3 + "/user/{userId}/rooms/{roomId}/account_data/{type}"),
        ("POST", V3 + "/user_directory/search"),
    }


def test_sync_endpoint_and_token_errors(api):
    room = api.node.room(name="R")
    status, body = api.call("GET", V3 + "/sync")
    assert status == 200 and room in body["rooms"]["join"]
    status, again = api.call("GET", V3 + "/sync", query={"since": body["next_batch"]})
    assert status == 200 and again["rooms"]["join"] == {}
    for bad in ("garbage", "s1_x", "s1_2_3_4_5_6_7_8_9_10"):
        status, err = api.call("GET", V3 + "/sync", query={"since": bad})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = api.call("GET", V3 + "/sync", query={"timeout": "soon"})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = api.call("GET", V3 + "/sync", query={"set_presence": "busy"})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = api.call("GET", V3 + "/sync", query={"filter": "{not json"})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = api.call(
        "GET", V3 + "/sync", query={"filter": '{"room":{"timeline":{"limit":1}}}'}
    )
    assert len(body["rooms"]["join"][room]["timeline"]["events"]) == 1


def test_filter_endpoints(api):
    status, body = api.call(
        "POST", V3 + f"/user/{ALICE}/filter", body={"room": {"timeline": {"limit": 2}}}
    )
    assert status == 200
    fid = body["filter_id"]
    assert api.call("GET", V3 + f"/user/{ALICE}/filter/{fid}") == (
        200,
        {"room": {"timeline": {"limit": 2}}},
    )
    assert api.call("GET", V3 + f"/user/{ALICE}/filter/999")[1]["errcode"] == "M_NOT_FOUND"
    assert api.call("GET", V3 + f"/user/{BOB}/filter/{fid}")[0] == 403
    assert api.call("POST", V3 + f"/user/{BOB}/filter", body={})[0] == 403
    status, err = api.call(
        "POST", V3 + f"/user/{ALICE}/filter", body={"room": {"timeline": {"limit": "ten"}}}
    )
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    status, err = api.call("POST", V3 + f"/user/{ALICE}/filter", raw=b"nope")
    assert (status, err["errcode"]) == (400, "M_NOT_JSON")
    room = api.node.room()
    for i in range(4):
        api.node.send(ALICE, room, f"m{i}")
    _, body = api.call("GET", V3 + "/sync", query={"filter": fid})
    assert len(body["rooms"]["join"][room]["timeline"]["events"]) == 2


def test_typing_endpoint(api):
    room = api.node.room()
    path = V3 + f"/rooms/{room}/typing/{ALICE}"
    assert api.call("PUT", path, body={"typing": True, "timeout": 10000}) == (200, {})
    assert api.node.sync.typing.typing_users(room) == [ALICE]
    assert api.call("PUT", path, body={"typing": False}) == (200, {})
    assert api.node.sync.typing.typing_users(room) == []
    assert api.call("PUT", path, body={"timeout": 5})[1]["errcode"] == "M_BAD_JSON"
    assert (
        api.call("PUT", path, body={"typing": True, "timeout": "x"})[1]["errcode"] == "M_BAD_JSON"
    )
    assert (
        api.call("PUT", V3 + f"/rooms/{room}/typing/{BOB}", user=BOB, body={"typing": True})[0]
        == 403
    )  # not in the room
    assert api.call("PUT", path, user=BOB, body={"typing": True})[0] == 403  # not yourself
    assert api.call("PUT", V3 + f"/rooms/!nope:x/typing/{ALICE}", body={"typing": True})[0] == 403


def test_receipt_endpoint(api):
    room = api.node.room()
    eid = api.node.send(ALICE, room, "x")
    base = V3 + f"/rooms/{room}/receipt"
    assert api.call("POST", f"{base}/m.read/{eid}", body={}) == (200, {})
    assert api.call("POST", f"{base}/m.read/{eid}", raw=b"") == (200, {})
    assert api.call("POST", f"{base}/m.read/{eid}", body={"thread_id": "main"}) == (200, {})
    assert api.call("POST", f"{base}/m.read.private/{eid}", body={}) == (200, {})
    for bad in ({"thread_id": ""}, {"thread_id": 5}, {"thread_id": "nothread"}):
        status, err = api.call("POST", f"{base}/m.read/{eid}", body=bad)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    assert (
        api.call("POST", f"{base}/m.fully_read/{eid}", body={"thread_id": "main"})[1]["errcode"]
        == "M_INVALID_PARAM"
    )
    assert api.call("POST", f"{base}/m.unknown/{eid}", body={})[1]["errcode"] == "M_INVALID_PARAM"
    assert api.call("POST", f"{base}/m.read/$missing", body={})[0] == 404
    assert api.call("POST", f"{base}/m.read/{eid}", user=BOB, body={})[0] == 403
    # m.fully_read through /receipt is the read marker (room account data).
    assert api.call("POST", f"{base}/m.fully_read/{eid}", body={}) == (200, {})
    assert api.call("GET", V3 + f"/user/{ALICE}/rooms/{room}/account_data/m.fully_read") == (
        200,
        {"event_id": eid},
    )


def test_read_markers_endpoint(api):
    room = api.node.room()
    e1 = api.node.send(ALICE, room, "one")
    e2 = api.node.send(ALICE, room, "two")
    path = V3 + f"/rooms/{room}/read_markers"
    assert api.call(
        "POST", path, body={"m.fully_read": e1, "m.read": e2, "m.read.private": e2}
    ) == (200, {})
    assert result_of(api.node.sync.account_data.get(ALICE, room, "m.fully_read")) == {
        "event_id": e1
    }
    got = result_of(api.node.sync.receipts.receipts_for_rooms([room], 0, ALICE))
    assert set(got[room]["content"][e2]) == {"m.read", "m.read.private"}
    assert api.call("POST", path, body={"m.read": 5})[1]["errcode"] == "M_BAD_JSON"
    assert api.call("POST", path, body={"m.fully_read": "$nope"})[0] == 404
    assert api.call("POST", path, user=BOB, body={"m.fully_read": e1})[0] == 403


def test_account_data_endpoints(api):
    g = V3 + f"/user/{ALICE}/account_data/org.example.x"
    assert api.call("GET", g)[1]["errcode"] == "M_NOT_FOUND"
    assert api.call("PUT", g, body={"a": 1}) == (200, {})
    assert api.call("GET", g) == (200, {"a": 1})
    assert api.call("GET", g, user=BOB)[0] == 403
    assert api.call("PUT", g, user=BOB, body={})[0] == 403
    assert api.call("PUT", g, raw=b"[1]")[1]["errcode"] == "M_BAD_JSON"
    assert api.call("PUT", g, raw=b"{")[1]["errcode"] == "M_NOT_JSON"
    for managed in ("m.fully_read", "m.push_rules"):
        status, err = api.call("PUT", V3 + f"/user/{ALICE}/account_data/{managed}", body={})
        assert (status, err["errcode"]) == (405, "M_BAD_JSON")
    room = api.node.room()
    r = V3 + f"/user/{ALICE}/rooms/{room}/account_data/m.tag"
    assert api.call("PUT", r, body={"tags": {"u.x": {}}}) == (200, {})
    assert api.call("GET", r) == (200, {"tags": {"u.x": {}}})
    assert (
        api.call("GET", V3 + f"/user/{ALICE}/rooms/{room}/account_data/org.example.x")[1]["errcode"]
        == "M_NOT_FOUND"
    )  # no fallback to global
    assert (
        api.call("PUT", V3 + f"/user/{ALICE}/rooms/{room}/account_data/m.fully_read", body={})[0]
        == 405
    )
    status, err = api.call("GET", V3 + f"/user/{ALICE}/rooms/@notaroom:x/account_data/t")
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")


class DirectoryAccounts:
    async def search_users(self, term, limit):
        users = [
            {"user_id": "@anna:school.test", "display_name": "Anna Berg"},
            {"user_id": "@bernd:school.test"},
            {"user_id": "@hanna:school.test", "display_name": "Hanna"},
        ]
        hits = [
            u
            for u in users
            if term.lower() in u["user_id"] or term.lower() in u.get("display_name", "").lower()
        ]
        return hits[:limit]


def test_user_directory_endpoint(api):
    api.node.sync.directory.accounts = DirectoryAccounts()
    path = V3 + "/user_directory/search"
    status, body = api.call("POST", path, body={"search_term": "anna"})
    assert status == 200 and body["limited"] is False
    # Prefix matches rank first.
    assert [r["user_id"] for r in body["results"]] == ["@anna:school.test", "@hanna:school.test"]
    assert body["results"][0]["display_name"] == "Anna Berg"
    status, body = api.call("POST", path, body={"search_term": "n", "limit": 1})
    assert len(body["results"]) == 1 and body["limited"] is True
    assert api.call("POST", path, body={})[1]["errcode"] == "M_MISSING_PARAM"
    assert api.call("POST", path, body={"search_term": 3})[1]["errcode"] == "M_BAD_JSON"
    assert (
        api.call("POST", path, body={"search_term": "a", "limit": "2"})[1]["errcode"]
        == "M_BAD_JSON"
    )


def test_user_directory_lists_remote_members_of_shared_rooms(api):
    node = api.node
    room = node.room(preset="public_chat")
    # A member from another server, as federation would persist it (bypassing auth here).
    from federation.events.builder import build_event
    from federation.keys import SigningKey

    state = result_of(node.rooms.get_current_state(room))
    create = state[("m.room.create", "")]
    jr = state[("m.room.join_rules", "")]
    pl = state[("m.room.power_levels", "")]
    room_state = result_of(node.rooms.get_room(room))
    ev = build_event(
        create.room_version,
        server_name="other.school",
        signing_key=SigningKey("k", b"\x02" * 32),
        type="m.room.member",
        sender="@zora:other.school",
        content={"membership": "join", "displayname": "Zora Q"},
        room_id=room,
        prev_events=list(room_state.extremities),
        auth_events=[jr.event_id, pl.event_id],
        depth=room_state.depth + 1,
        origin_server_ts=1,
        state_key="@zora:other.school",
    )
    result_of(node.rooms.commit_local(room_state, ev))
    api.node.sync.directory.accounts = DirectoryAccounts()
    _, body = api.call(
        "POST", V3 + "/user_directory/search", user=CAROL, body={"search_term": "zora"}
    )
    assert body["results"] == [{"user_id": "@zora:other.school", "display_name": "Zora Q"}]
