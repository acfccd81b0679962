"""Mutual rooms, room summaries and timestamp-to-event, as a client sees them."""

from __future__ import annotations

import pytest

from node.rooms.api import mutual_rooms
from rooms_support import Api, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


@pytest.fixture
def api():
    return Api(make_service())


def new_room(api, user=ALICE, **body):
    return api.call("POST", V3 + "/createRoom", user, body)[1]["room_id"]


def say(api, room, user, text, txn):
    body = {"msgtype": "m.text", "body": text}
    return api.call("PUT", f"{V3}/rooms/{room}/send/m.room.message/{txn}", user, body)[1][
        "event_id"
    ]


# --- mutual rooms ------------------------------------------------------------------------
def test_mutual_rooms_lists_only_rooms_both_joined(api):
    shared = new_room(api, preset="public_chat")
    api.call("POST", f"{V3}/rooms/{shared}/join", BOB, {})
    new_room(api)  # alice alone
    other = new_room(api, BOB, preset="public_chat")  # bob alone
    invited = new_room(api)
    api.call("POST", f"{V3}/rooms/{invited}/invite", ALICE, {"user_id": BOB})
    status, body = api.call("GET", V1 + "/mutual_rooms", ALICE, query={"user_id": BOB})
    assert status == 200
    assert body == {"joined": [shared], "count": 1}
    assert other not in body["joined"]
    # carol shares nothing with bob, and learns nothing of bob's rooms
    assert api.call("GET", V1 + "/mutual_rooms", CAROL, query={"user_id": BOB})[1] == {
        "joined": [],
        "count": 0,
    }
    # an unknown user: an empty list
    assert api.call("GET", V1 + "/mutual_rooms", ALICE, query={"user_id": "@nobody:x.y"})[1] == {
        "joined": [],
        "count": 0,
    }


def test_mutual_rooms_bad_input(api):
    assert api.status("GET", V1 + "/mutual_rooms", ALICE) == (400, "M_MISSING_PARAM")
    for bad in ("bob", "@", ALICE):
        assert api.status("GET", V1 + "/mutual_rooms", ALICE, query={"user_id": bad}) == (
            400,
            "M_INVALID_PARAM",
        )
    assert api.status(
        "GET", V1 + "/mutual_rooms", ALICE, query={"user_id": BOB, "from": "junk"}
    ) == (400, "M_INVALID_PARAM")


def test_mutual_rooms_pages(monkeypatch):
    monkeypatch.setattr(mutual_rooms, "PAGE_SIZE", 2)
    api = Api(make_service())
    rooms = []
    for _ in range(5):
        room = new_room(api, preset="public_chat")
        api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
        rooms.append(room)
    seen, token = [], None
    for _ in range(4):
        query = {"user_id": BOB} if token is None else {"user_id": BOB, "from": token}
        body = api.call("GET", V1 + "/mutual_rooms", ALICE, query=query)[1]
        assert body["count"] == 5
        seen += body["joined"]
        token = body.get("next_batch")
        if token is None:
            break
    assert seen == sorted(rooms)


# --- room summary ------------------------------------------------------------------------
def test_summary_of_joined_and_public_rooms(api):
    room = new_room(api, preset="private_chat", name="Maths 4B", topic="fractions")
    status, body = api.call("GET", f"{V1}/room_summary/{room}", ALICE)
    assert status == 200
    assert body["room_id"] == room
    assert body["name"] == "Maths 4B" and body["topic"] == "fractions"
    assert body["membership"] == "join" and body["join_rule"] == "invite"
    assert body["num_joined_members"] == 1
    assert body["room_version"] and body["guest_can_join"] is True  # private_chat preset
    public = new_room(api, preset="public_chat", room_alias_name="club")
    status, body = api.call("GET", f"{V1}/room_summary/%23club:school.test", BOB)
    assert status == 200 and body["room_id"] == public and body["membership"] == "leave"
    # unauthenticated callers see public rooms, without a membership
    status, body = api.call("GET", f"{V1}/room_summary/{public}")
    assert status == 200 and "membership" not in body


def test_summary_does_not_leak_private_rooms(api):
    room = new_room(api, preset="private_chat", name="Staff room")
    assert api.status("GET", f"{V1}/room_summary/{room}", BOB) == (404, "M_NOT_FOUND")
    assert api.status("GET", f"{V1}/room_summary/{room}") == (404, "M_NOT_FOUND")
    unknown = "!nothere:school.test"
    assert api.status("GET", f"{V1}/room_summary/{unknown}", BOB) == (404, "M_NOT_FOUND")
    assert api.status("GET", f"{V1}/room_summary/%23nope:school.test", BOB) == (
        404,
        "M_NOT_FOUND",
    )
    assert api.status("GET", f"{V1}/room_summary/garbage", BOB) == (400, "M_INVALID_PARAM")
    # an invitee may see it
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB})
    status, body = api.call("GET", f"{V1}/room_summary/{room}", BOB)
    assert status == 200 and body["membership"] == "invite"


# --- timestamp to event ------------------------------------------------------------------
def test_timestamp_to_event_both_directions(api):
    room = new_room(api)
    first = say(api, room, ALICE, "one", "t1")
    second = say(api, room, ALICE, "two", "t2")
    ev1 = api.call("GET", f"{V3}/rooms/{room}/event/{first}", ALICE)[1]
    ev2 = api.call("GET", f"{V3}/rooms/{room}/event/{second}", ALICE)[1]
    ts1, ts2 = ev1["origin_server_ts"], ev2["origin_server_ts"]
    path = f"{V1}/rooms/{room}/timestamp_to_event"
    assert api.call("GET", path, ALICE, query={"ts": str(ts1 + 1), "dir": "f"}) == (
        200,
        {"event_id": second, "origin_server_ts": ts2},
    )
    assert api.call("GET", path, ALICE, query={"ts": str(ts2 - 1), "dir": "b"}) == (
        200,
        {"event_id": first, "origin_server_ts": ts1},
    )
    assert api.status("GET", path, ALICE, query={"ts": str(ts2 + 10), "dir": "f"}) == (
        404,
        "M_NOT_FOUND",
    )


def test_timestamp_to_event_respects_membership_and_input(api):
    room = new_room(api, preset="private_chat")
    api.call(
        "PUT",
        f"{V3}/rooms/{room}/state/m.room.history_visibility/",
        ALICE,
        {"history_visibility": "joined"},
    )
    secret = say(api, room, ALICE, "secret", "t1")
    path = f"{V1}/rooms/{room}/timestamp_to_event"
    assert api.status("GET", path, BOB, query={"ts": "0", "dir": "f"}) == (403, "M_FORBIDDEN")
    assert api.status("GET", path, ALICE, query={"dir": "f"}) == (400, "M_MISSING_PARAM")
    assert api.status("GET", path, ALICE, query={"ts": "0"}) == (400, "M_MISSING_PARAM")
    assert api.status("GET", path, ALICE, query={"ts": "0", "dir": "x"}) == (
        400,
        "M_INVALID_PARAM",
    )
    assert api.status("GET", path, ALICE, query={"ts": "abc", "dir": "f"}) == (
        400,
        "M_INVALID_PARAM",
    )
    # joined-history: bob, invited later, does not see what was said before he joined
    secret_ts = api.call("GET", f"{V3}/rooms/{room}/event/{secret}", ALICE)[1]["origin_server_ts"]
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB})
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    status, body = api.call("GET", path, BOB, query={"ts": str(secret_ts), "dir": "f"})
    assert status == 200
    assert body["event_id"] != secret
    assert api.call("GET", path, ALICE, query={"ts": str(secret_ts), "dir": "f"})[1] == {
        "event_id": secret,
        "origin_server_ts": secret_ts,
    }


class FakeRemoteRoom:
    def __init__(self, summary):
        self.room_id = summary["room_id"]
        self.room_type = None
        self.summary = summary

    def children(self, suggested_only):
        return []

    def visible_to(self, joined_rooms):
        return self.summary["join_rule"] == "public"


class FakeRemoteHierarchy:
    def __init__(self, rooms):
        self.rooms = rooms
        self.asked = []

    def cached(self, room_id, suggested_only, parent=None):
        return False, None

    async def fetch(self, room_id, via, suggested_only):
        self.asked.append((room_id, list(via)))
        return self.rooms.get(room_id)


def test_summary_of_a_remote_room_asks_the_via_servers():
    from node.rooms.hooks import RoomHooks

    service = make_service()
    remote = FakeRemoteHierarchy(
        {
            "!open:other.school": FakeRemoteRoom(
                {"room_id": "!open:other.school", "join_rule": "public", "name": "Choir"}
            ),
            "!closed:other.school": FakeRemoteRoom(
                {"room_id": "!closed:other.school", "join_rule": "invite"}
            ),
        }
    )
    service.attach_federation(RoomHooks(remote_hierarchy=remote))
    api = Api(service)
    path = f"{V1}/room_summary/!open:other.school"
    status, body = api.call("GET", path, BOB, query={"via": ["other.school"]})
    assert status == 200 and body["name"] == "Choir" and body["membership"] == "leave"
    assert remote.asked == [("!open:other.school", ["other.school"])]
    # an invite-only remote room stays hidden; without via nobody is asked
    closed = f"{V1}/room_summary/!closed:other.school"
    assert api.status("GET", closed, BOB, query={"via": ["other.school"]}) == (404, "M_NOT_FOUND")
    assert api.status("GET", f"{V1}/room_summary/!x:other.school", BOB) == (404, "M_NOT_FOUND")
    # unauthenticated callers never make the node ask other servers
    assert api.status("GET", path, query={"via": ["other.school"]}) == (404, "M_NOT_FOUND")
    assert len(remote.asked) == 2
