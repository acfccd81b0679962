"""Room endpoints over real HTTP against a node subprocess on a loopback port: URL
encoding of IDs and aliases, unauthenticated directory endpoints, trailing-slash state
URLs, the v1 hierarchy path and the error codes as a client sees them."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from accounts_node import NodeProcess

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = NodeProcess(str(tmp_path_factory.mktemp("rooms-node")), rate_limits={"enabled": False})
    n.add_user("teacher", display_name="Ms Teacher")
    n.add_user("pupil", role="pupil")
    n.tokens = {u: n.login(u)["access_token"] for u in ("teacher", "pupil")}
    yield n
    assert n.stop() == 0, n.read_log()


def call(node, method, path, body=None, user=None):
    return node.request(method, path, body, token=node.tokens[user] if user else None)


def test_room_lifecycle_over_http(node):
    status, out = call(
        node,
        "POST",
        V3 + "/createRoom",
        {
            "preset": "public_chat",
            "room_alias_name": "aula",
            "name": "Aula",
            "visibility": "public",
        },
        "teacher",
    )
    assert status == 200, out
    room = out["room_id"]
    q = quote(room)
    # unauthenticated: alias lookup and the public directory
    status, out = call(node, "GET", V3 + "/directory/room/" + quote("#aula:school.test"))
    assert (status, out["room_id"]) == (200, room)
    status, out = call(node, "GET", V3 + "/publicRooms")
    assert status == 200 and [c["name"] for c in out["chunk"]] == ["Aula"]
    # join by alias, send, read back via /messages and /event
    status, out = call(node, "POST", V3 + "/join/" + quote("#aula:school.test"), {}, "pupil")
    assert (status, out) == (200, {"room_id": room})
    status, out = call(
        node,
        "PUT",
        f"{V3}/rooms/{q}/send/m.room.message/tx1",
        {"msgtype": "m.text", "body": "Guten Morgen"},
        "pupil",
    )
    assert status == 200
    event_id = out["event_id"]
    status, again = call(
        node,
        "PUT",
        f"{V3}/rooms/{q}/send/m.room.message/tx1",
        {"msgtype": "m.text", "body": "Guten Morgen"},
        "pupil",
    )
    assert again == {"event_id": event_id}
    status, page = call(node, "GET", f"{V3}/rooms/{q}/messages?dir=b&limit=1", user="teacher")
    assert status == 200 and page["chunk"][0]["event_id"] == event_id
    assert "transaction_id" not in page["chunk"][0]["unsigned"]  # not the sender's device
    status, ev = call(node, "GET", f"{V3}/rooms/{q}/event/{quote(event_id)}", user="pupil")
    assert status == 200 and ev["unsigned"]["transaction_id"] == "tx1"
    # state with and without the trailing slash
    status, _ = call(
        node, "PUT", f"{V3}/rooms/{q}/state/m.room.topic/", {"topic": "Hof"}, "teacher"
    )
    assert status == 200
    assert call(node, "GET", f"{V3}/rooms/{q}/state/m.room.topic", user="pupil") == (
        200,
        {"topic": "Hof"},
    )
    # joined members carry the profile
    status, jm = call(node, "GET", f"{V3}/rooms/{q}/joined_members", user="pupil")
    assert jm["joined"]["@teacher:school.test"] == {"display_name": "Ms Teacher"}


def test_error_codes_over_http(node):
    status, out = call(node, "POST", V3 + "/createRoom", {"preset": "private_chat"}, "teacher")
    q = quote(out["room_id"])
    status, err = call(node, "POST", f"{V3}/rooms/{q}/join", {}, "pupil")
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    status, err = call(
        node, "PUT", f"{V3}/rooms/{q}/send/m.room.message/x", {"body": 1.5}, "teacher"
    )
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    status, err = call(node, "POST", V3 + "/createRoom", {"room_version": "1"}, "teacher")
    assert (status, err["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION")
    status, err = call(node, "GET", f"{V3}/rooms/{q}/messages", user="teacher")
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
    status, err = call(node, "GET", V3 + "/directory/room/" + quote("#missing:school.test"))
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    status, err = call(node, "GET", f"{V3}/rooms/{q}/state", user="pupil")
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")


def test_space_hierarchy_over_http(node):
    _, space = call(
        node,
        "POST",
        V3 + "/createRoom",
        {"preset": "public_chat", "name": "Schule", "creation_content": {"type": "m.space"}},
        "teacher",
    )
    _, child = call(
        node, "POST", V3 + "/createRoom", {"preset": "public_chat", "name": "5b"}, "teacher"
    )
    sq = quote(space["room_id"])
    status, _ = call(
        node,
        "PUT",
        f"{V3}/rooms/{sq}/state/m.space.child/{quote(child['room_id'])}",
        {"via": ["school.test"]},
        "teacher",
    )
    assert status == 200
    status, out = call(node, "GET", f"/_matrix/client/v1/rooms/{sq}/hierarchy", user="pupil")
    assert status == 200
    assert [r["name"] for r in out["rooms"]] == ["Schule", "5b"]
    assert out["rooms"][0]["children_state"][0]["state_key"] == child["room_id"]
