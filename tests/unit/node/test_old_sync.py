"""The deprecated sync API (``/initialSync``, ``/events``, ``/events/{eventId}``,
``/rooms/{roomId}/initialSync``) as an old client or bot sees it."""

from __future__ import annotations

from support.deferreds import result_of
from twisted.internet import defer

from federation.errors import MatrixError
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.sync.api import old_sync
from test_sync_handler import ALICE, BOB, CAROL, Node

V3 = "/_matrix/client/v3"


class OldNode(Node):
    def __init__(self) -> None:
        super().__init__()
        self.router = Router()
        old_sync.register(self.router, self.sync)

    def _request(self, method, path, user, query):
        route, params, _ = self.router.match(method, path)
        assert route is not None, f"no route for {method} {path}"
        args = {k: [v] for k, v in (query or {}).items()}
        req = ApiRequest(method, path, args, {}, b"", "::1")
        req.requester = Requester(user, "DEV")
        return route.handler(req, **params)

    def get(self, path, user=ALICE, **query):
        try:
            return result_of(self._request("GET", path, user, query))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    def start(self, path, user=ALICE, **query):
        out: list = []
        defer.ensureDeferred(self._request("GET", path, user, query)).addBoth(out.append)
        return out


def bodies(chunk):
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_initial_sync_lists_rooms_messages_and_state():
    node = OldNode()
    room = node.room(ALICE, preset="public_chat", name="Science")
    for i in range(5):
        node.send(ALICE, room, f"m{i}")
    invited = node.room(BOB)
    node.member(BOB, invited, ALICE, "invite")
    status, body = node.get(V3 + "/initialSync", limit="3")
    assert status == 200
    assert body["end"].startswith("s") and body["account_data"] == []
    by_id = {r["room_id"]: r for r in body["rooms"]}
    joined = by_id[room]
    assert joined["membership"] == "join" and joined["visibility"] == "private"
    assert bodies(joined["messages"]["chunk"]) == ["m2", "m3", "m4"]  # oldest first
    assert joined["messages"]["start"] and joined["messages"]["end"]
    assert {e["type"] for e in joined["state"]} >= {"m.room.create", "m.room.name"}
    assert all(e["room_id"] == room for e in joined["messages"]["chunk"])
    assert by_id[invited]["membership"] == "invite"
    assert by_id[invited]["invite"]["content"]["membership"] == "invite"
    assert "messages" not in by_id[invited]  # an invitee sees no history


def test_initial_sync_archived_rooms():
    node = OldNode()
    room = node.room(ALICE, preset="public_chat")
    node.member(BOB, room, BOB, "join")
    node.send(ALICE, room, "before")
    node.member(BOB, room, BOB, "leave")
    node.send(ALICE, room, "after")
    assert room not in {r["room_id"] for r in node.get(V3 + "/initialSync", BOB)[1]["rooms"]}
    rooms = node.get(V3 + "/initialSync", BOB, archived="true")[1]["rooms"]
    (left,) = [r for r in rooms if r["room_id"] == room]
    assert left["membership"] == "leave"
    assert "before" in bodies(left["messages"]["chunk"])
    assert "after" not in bodies(left["messages"]["chunk"])  # nothing after the leave


def test_room_initial_sync_and_access():
    node = OldNode()
    room = node.room(ALICE, preset="private_chat", name="Staff")
    node.send(ALICE, room, "hello")
    status, body = node.get(f"{V3}/rooms/{room}/initialSync")
    assert status == 200
    assert body["room_id"] == room and body["membership"] == "join"
    assert bodies(body["messages"]["chunk"]) == ["hello"]
    assert body["visibility"] == "private" and body["account_data"] == []
    status, err = node.get(f"{V3}/rooms/{room}/initialSync", CAROL)
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")


def test_get_single_event():
    node = OldNode()
    room = node.room(ALICE, preset="private_chat")
    event_id = node.send(ALICE, room, "secret")
    status, body = node.get(f"{V3}/events/{event_id}")
    assert status == 200 and body["event_id"] == event_id and body["room_id"] == room
    status, err = node.get(f"{V3}/events/{event_id}", CAROL)
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    status, err = node.get(f"{V3}/events/$nothing")
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")


def test_event_stream_from_initial_sync_end():
    node = OldNode()
    room = node.room(ALICE, preset="public_chat")
    end = node.get(V3 + "/initialSync")[1]["end"]
    node.send(ALICE, room, "new one")
    status, body = node.get(V3 + "/events", **{"from": end})
    assert status == 200 and body["start"] == end
    assert bodies(body["chunk"]) == ["new one"]
    assert body["chunk"][0]["room_id"] == room
    # nothing new: an empty chunk and the same position
    again = node.get(V3 + "/events", **{"from": body["end"]})[1]
    assert again["chunk"] == []
    # a long poll wakes on a new event
    waiting = node.start(V3 + "/events", **{"from": again["end"], "timeout": "30000"})
    assert waiting == []
    node.send(ALICE, room, "later")
    assert waiting and bodies(waiting[0][1]["chunk"]) == ["later"]


def test_peeking_a_world_readable_room_only():
    node = OldNode()
    room = node.room(ALICE, preset="public_chat")
    secret = node.room(ALICE, preset="private_chat")
    result_of(
        node.rooms.send_event(
            ALICE,
            room,
            "m.room.history_visibility",
            {"history_visibility": "world_readable"},
            state_key="",
        )
    )
    start = node.get(V3 + "/events", CAROL, room_id=room)[1]["end"]
    node.send(ALICE, room, "for everyone")
    node.send(ALICE, secret, "for nobody")
    status, body = node.get(V3 + "/events", CAROL, room_id=room, **{"from": start})
    assert status == 200 and bodies(body["chunk"]) == ["for everyone"]
    status, err = node.get(V3 + "/events", CAROL, room_id=secret, **{"from": start})
    assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
    assert node.get(V3 + "/events", CAROL, **{"from": "garbage"})[0] == 400
