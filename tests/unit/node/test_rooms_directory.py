"""Room aliases, canonical alias validation, the published room directory and spaces."""

from __future__ import annotations

import pytest

from rooms_support import Api, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


@pytest.fixture
def api():
    return Api(make_service())


def new_room(api, user=ALICE, **body):
    return api.call("POST", V3 + "/createRoom", user, body)[1]["room_id"]


def test_alias_lifecycle(api):
    room = new_room(api)
    alias = "%23maths:school.test"
    assert api.call("PUT", f"{V3}/directory/room/{alias}", ALICE, {"room_id": room}) == (200, {})
    assert api.call("GET", f"{V3}/directory/room/{alias}") == (
        200,
        {"room_id": room, "servers": ["school.test"]},
    )
    assert api.status("PUT", f"{V3}/directory/room/{alias}", ALICE, {"room_id": room}) == (
        409,
        "M_UNKNOWN",
    )
    assert api.call("GET", f"{V3}/rooms/{room}/aliases", ALICE) == (
        200,
        {"aliases": ["#maths:school.test"]},
    )
    assert api.status("GET", f"{V3}/rooms/{room}/aliases", BOB) == (403, "M_FORBIDDEN")
    # bob (not in the room, not the creator) may not delete it
    assert api.status("DELETE", f"{V3}/directory/room/{alias}", BOB) == (403, "M_FORBIDDEN")
    assert api.call("DELETE", f"{V3}/directory/room/{alias}", ALICE) == (200, {})
    assert api.status("GET", f"{V3}/directory/room/{alias}") == (404, "M_NOT_FOUND")
    assert api.status("DELETE", f"{V3}/directory/room/{alias}", ALICE) == (404, "M_NOT_FOUND")


def test_alias_errors(api):
    room = new_room(api)
    assert api.status("GET", f"{V3}/directory/room/notanalias") == (400, "M_INVALID_PARAM")
    assert api.status(
        "PUT", f"{V3}/directory/room/%23x:other.school", ALICE, {"room_id": room}
    ) == (400, "M_INVALID_PARAM")
    assert api.status("PUT", f"{V3}/directory/room/%23x:school.test", BOB, {"room_id": room}) == (
        403,
        "M_FORBIDDEN",
    )
    assert api.status(
        "PUT", f"{V3}/directory/room/%23x:school.test", ALICE, {"room_id": "!missing"}
    ) == (404, "M_NOT_FOUND")


def test_canonical_alias_validation_and_delete_updates_it(api):
    room = new_room(api)
    other = new_room(api)
    api.call("PUT", f"{V3}/directory/room/%23good:school.test", ALICE, {"room_id": room})
    api.call("PUT", f"{V3}/directory/room/%23elsewhere:school.test", ALICE, {"room_id": other})
    url = f"{V3}/rooms/{room}/state/m.room.canonical_alias"
    assert api.status("PUT", url, ALICE, {"alias": "bad"}) == (400, "M_INVALID_PARAM")
    assert api.status("PUT", url, ALICE, {"alias": "#elsewhere:school.test"}) == (
        400,
        "M_BAD_ALIAS",
    )
    assert api.status("PUT", url, ALICE, {"alias": "#unknown:school.test"}) == (400, "M_BAD_ALIAS")
    assert api.call("PUT", url, ALICE, {"alias": "#good:school.test"})[0] == 200
    api.call("DELETE", f"{V3}/directory/room/%23good:school.test", ALICE)
    assert api.call("GET", url, ALICE) == (200, {})


def test_public_directory_listing_filter_and_pages(api):
    r1 = new_room(
        api, preset="public_chat", visibility="public", name="Chess club", topic="Knights"
    )
    r2 = new_room(
        api,
        preset="public_chat",
        visibility="public",
        name="Choir",
        creation_content={"type": "m.space"},
    )
    new_room(api, name="Private staff room")  # not published
    api.call("POST", f"{V3}/rooms/{r2}/join", BOB, {})
    status, out = api.call("GET", V3 + "/publicRooms")
    assert [c["room_id"] for c in out["chunk"]] == [r2, r1]  # most members first
    chess = out["chunk"][1]
    assert chess == {
        "room_id": r1,
        "name": "Chess club",
        "topic": "Knights",
        "num_joined_members": 1,
        "world_readable": False,
        "guest_can_join": False,
        "join_rule": "public",
    }
    assert out["total_room_count_estimate"] == 2 and "next_batch" not in out
    page1 = api.call("GET", V3 + "/publicRooms", query={"limit": "1"})[1]
    page2 = api.call(
        "GET", V3 + "/publicRooms", query={"limit": "1", "since": page1["next_batch"]}
    )[1]
    assert [c["room_id"] for c in page1["chunk"] + page2["chunk"]] == [r2, r1]
    assert "prev_batch" in page2 and "next_batch" not in page2
    found = api.call(
        "POST", V3 + "/publicRooms", ALICE, {"filter": {"generic_search_term": "knight"}}
    )[1]
    assert [c["room_id"] for c in found["chunk"]] == [r1]
    spaces = api.call("POST", V3 + "/publicRooms", ALICE, {"filter": {"room_types": ["m.space"]}})[
        1
    ]
    assert [c["room_id"] for c in spaces["chunk"]] == [r2]
    plain = api.call("POST", V3 + "/publicRooms", ALICE, {"filter": {"room_types": [None]}})[1]
    assert [c["room_id"] for c in plain["chunk"]] == [r1]
    assert api.status("GET", V3 + "/publicRooms", query={"since": "zzz"}) == (
        400,
        "M_INVALID_PARAM",
    )


def test_directory_visibility(api):
    room = new_room(api, preset="public_chat")
    url = f"{V3}/directory/list/room/{room}"
    assert api.call("GET", url) == (200, {"visibility": "private"})
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    assert api.status("PUT", url, BOB, {"visibility": "public"}) == (403, "M_FORBIDDEN")
    assert api.call("PUT", url, ALICE, {"visibility": "public"}) == (200, {})
    assert api.call("GET", url) == (200, {"visibility": "public"})
    assert [c["room_id"] for c in api.call("GET", V3 + "/publicRooms")[1]["chunk"]] == [room]
    api.call("PUT", url, ALICE, {"visibility": "private"})
    assert api.call("GET", V3 + "/publicRooms")[1]["chunk"] == []
    assert api.status("GET", f"{V3}/directory/list/room/!nope") == (404, "M_NOT_FOUND")


def test_space_hierarchy(api):
    space = new_room(api, name="School", creation_content={"type": "m.space"}, preset="public_chat")
    sub = new_room(api, name="Year 5", creation_content={"type": "m.space"}, preset="public_chat")
    maths = new_room(api, name="Maths", preset="public_chat")
    staff = new_room(api, name="Staff")  # invite-only
    art = new_room(api, name="Art", preset="public_chat")
    for child, content in (
        (sub, {"via": ["school.test"], "order": "b"}),
        (staff, {"via": ["school.test"], "order": "a"}),
        (art, {"via": ["school.test"], "suggested": True}),
        ("!gone", {"via": ["school.test"]}),
        (maths, {}),
    ):  # no via: not a child
        api.call("PUT", f"{V3}/rooms/{space}/state/m.space.child/{child}", ALICE, content)
    api.call(
        "PUT", f"{V3}/rooms/{sub}/state/m.space.child/{maths}", ALICE, {"via": ["school.test"]}
    )
    api.call(
        "PUT", f"{V3}/rooms/{sub}/state/m.space.child/{space}", ALICE, {"via": ["school.test"]}
    )  # a loop

    url = f"{V1}/rooms/{space}/hierarchy"
    rooms = api.call("GET", url, BOB)[1]["rooms"]
    # bob is not invited to staff: it is left out; order: 'a' < 'b' < no order
    assert [r["room_id"] for r in rooms] == [space, sub, maths, art]
    top = rooms[0]
    assert top["room_type"] == "m.space" and top["name"] == "School"
    assert [c["state_key"] for c in top["children_state"]] == [staff, sub, art, "!gone"]
    assert all("origin_server_ts" in c for c in top["children_state"])
    assert rooms[2]["children_state"] == [] and rooms[2]["room_version"] == "12"
    # alice (creator of staff) sees it
    assert staff in [r["room_id"] for r in api.call("GET", url, ALICE)[1]["rooms"]]
    # suggested only / max depth
    assert [
        r["room_id"]
        for r in api.call("GET", url, BOB, query={"suggested_only": "true"})[1]["rooms"]
    ] == [space, art]
    assert [
        r["room_id"] for r in api.call("GET", url, BOB, query={"max_depth": "0"})[1]["rooms"]
    ] == [space]
    # pagination
    p1 = api.call("GET", url, BOB, query={"limit": "2"})[1]
    p2 = api.call("GET", url, BOB, query={"limit": "2", "from": p1["next_batch"]})[1]
    assert [r["room_id"] for r in p1["rooms"] + p2["rooms"]] == [space, sub, maths, art]
    assert api.status("GET", url, BOB, query={"from": p1["next_batch"], "max_depth": "1"}) == (
        400,
        "M_INVALID_PARAM",
    )
    # a room bob may not see
    assert api.status("GET", f"{V1}/rooms/{staff}/hierarchy", BOB) == (403, "M_FORBIDDEN")
