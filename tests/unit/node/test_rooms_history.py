"""/messages, /context, /event, /state and /members: pagination and history visibility."""

from __future__ import annotations

import json

import pytest
from support.deferreds import result_of

from federation.errors import MatrixError
from rooms_support import Api, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V3 = "/_matrix/client/v3"


def new_room(api, user=ALICE, **body):
    return api.call("POST", V3 + "/createRoom", user, body)[1]["room_id"]


def say(api, room, user, text, txn=None):
    txn = txn or f"t-{text}"
    return api.call(
        "PUT",
        f"{V3}/rooms/{room}/send/m.room.message/{txn}",
        user,
        {"msgtype": "m.text", "body": text},
    )[1]["event_id"]


def bodies(chunk):
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def messages(api, room, user, **query):
    return api.call("GET", f"{V3}/rooms/{room}/messages", user, query=query)[1]


@pytest.fixture
def room_with_messages():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, preset="public_chat")
    for i in range(12):
        say(api, room, ALICE, f"m{i}")
    return svc, api, room


def test_paginate_backwards_then_forwards(room_with_messages):
    svc, api, room = room_with_messages
    page1 = messages(api, room, ALICE, dir="b", limit="5")
    assert bodies(page1["chunk"]) == ["m11", "m10", "m9", "m8", "m7"]
    page2 = messages(api, room, ALICE, dir="b", limit="5", **{"from": page1["end"]})
    assert bodies(page2["chunk"]) == ["m6", "m5", "m4", "m3", "m2"]
    assert page2["start"] == page1["end"]
    # forwards from page2's end returns what page2 returned, oldest first
    fwd = messages(api, room, ALICE, dir="f", limit="5", **{"from": page2["end"]})
    assert bodies(fwd["chunk"]) == ["m2", "m3", "m4", "m5", "m6"]
    # reaching the start of the room: no `end`
    rest = messages(api, room, ALICE, dir="b", limit="100", **{"from": page2["end"]})
    assert rest["chunk"][-1]["type"] == "m.room.create" and "end" not in rest
    # forward from the beginning, default limit 10
    first = messages(api, room, ALICE, dir="f")
    assert len(first["chunk"]) == 10 and first["chunk"][0]["type"] == "m.room.create"


def test_to_token_bounds_the_page(room_with_messages):
    svc, api, room = room_with_messages
    page1 = messages(api, room, ALICE, dir="b", limit="3")  # m11..m9
    bounded = messages(api, room, ALICE, dir="b", limit="50", to=page1["end"])
    assert bodies(bounded["chunk"]) == ["m11", "m10", "m9"]
    assert "end" not in bounded
    fwd = messages(api, room, ALICE, dir="f", limit="50", **{"from": page1["end"]})
    assert bodies(fwd["chunk"]) == ["m9", "m10", "m11"]


def test_sync_style_full_token_and_bad_tokens(room_with_messages):
    svc, api, room = room_with_messages
    pos = svc.current_stream_ordering()
    page = messages(api, room, ALICE, dir="b", limit="1", **{"from": f"s{pos}_0_0_0"})
    assert bodies(page["chunk"]) == ["m11"]
    assert api.status(
        "GET", f"{V3}/rooms/{room}/messages", ALICE, query={"dir": "b", "from": "garbage"}
    ) == (400, "M_INVALID_PARAM")
    assert api.status("GET", f"{V3}/rooms/{room}/messages", ALICE, query={"dir": "x"}) == (
        400,
        "M_INVALID_PARAM",
    )
    assert api.status("GET", f"{V3}/rooms/{room}/messages", ALICE, query={}) == (
        400,
        "M_MISSING_PARAM",
    )


def test_filter_types_and_senders(room_with_messages):
    svc, api, room = room_with_messages
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    say(api, room, BOB, "from bob")
    flt = json.dumps({"types": ["m.room.message"], "senders": [BOB]})
    page = messages(api, room, ALICE, dir="b", limit="5", filter=flt)
    assert bodies(page["chunk"]) == ["from bob"] and len(page["chunk"]) == 1
    lazy = json.dumps({"lazy_load_members": True, "types": ["m.room.message"]})
    page = messages(api, room, ALICE, dir="b", limit="2", filter=lazy)
    assert {e["state_key"] for e in page["state"]} == {ALICE, BOB}
    assert (
        api.status(
            "GET", f"{V3}/rooms/{room}/messages", ALICE, query={"dir": "b", "filter": "{nope"}
        )[1]
        == "M_NOT_JSON"
    )


def test_non_member_is_forbidden(room_with_messages):
    svc, api, room = room_with_messages
    assert api.status("GET", f"{V3}/rooms/{room}/messages", CAROL, query={"dir": "b"}) == (
        403,
        "M_FORBIDDEN",
    )
    assert api.status("GET", f"{V3}/rooms/{room}/state", CAROL) == (403, "M_FORBIDDEN")
    assert api.status("GET", f"{V3}/rooms/{room}/members", CAROL) == (403, "M_FORBIDDEN")


def test_left_user_sees_history_up_to_leave_only():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, preset="public_chat", name="Before")
    say(api, room, ALICE, "before join")
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    say(api, room, ALICE, "while joined")
    api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {})
    say(api, room, ALICE, "after leave")
    api.call("PUT", f"{V3}/rooms/{room}/state/m.room.name", ALICE, {"name": "After"})
    page = messages(api, room, BOB, dir="b", limit="50")
    texts = bodies(page["chunk"])
    assert "after leave" not in texts
    assert texts[:2] == ["while joined", "before join"]  # shared: earlier history too
    # state is the state when bob left
    assert api.call("GET", f"{V3}/rooms/{room}/state/m.room.name", BOB) == (200, {"name": "Before"})
    members = api.call("GET", f"{V3}/rooms/{room}/members", BOB)[1]["chunk"]
    assert {m["state_key"]: m["content"]["membership"] for m in members}[BOB] == "leave"
    # joined_members is only for current members
    assert api.status("GET", f"{V3}/rooms/{room}/joined_members", BOB) == (403, "M_FORBIDDEN")
    # the current state for alice
    assert api.call("GET", f"{V3}/rooms/{room}/state/m.room.name", ALICE) == (
        200,
        {"name": "After"},
    )


def test_joined_history_visibility_hides_earlier_events():
    svc = make_service()
    api = Api(svc)
    room = new_room(
        api,
        preset="public_chat",
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}
        ],
    )
    say(api, room, ALICE, "secret")
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    say(api, room, ALICE, "welcome")
    page = messages(api, room, BOB, dir="b", limit="50")
    assert bodies(page["chunk"]) == ["welcome"]
    # Events sent before history_visibility became "joined" were "shared" when sent
    # ("applied at the point an event is sent"): the room's set-up stays visible.
    types = [e["type"] for e in page["chunk"]]
    assert types[:3] == ["m.room.message", "m.room.member", "m.room.history_visibility"]
    assert "m.room.create" in types
    secret_id = [
        e
        for e in messages(api, room, ALICE, dir="b", limit="50")["chunk"]
        if e["content"].get("body") == "secret"
    ][0]["event_id"]
    assert api.status("GET", f"{V3}/rooms/{room}/event/{secret_id}", BOB) == (404, "M_NOT_FOUND")
    assert api.status("GET", f"{V3}/rooms/{room}/context/{secret_id}", BOB) == (404, "M_NOT_FOUND")


def test_invited_history_visibility():
    svc = make_service()
    api = Api(svc)
    room = new_room(
        api,
        initial_state=[
            {"type": "m.room.history_visibility", "content": {"history_visibility": "invited"}}
        ],
    )
    say(api, room, ALICE, "early")
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": BOB})
    say(api, room, ALICE, "after invite")
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    assert bodies(messages(api, room, BOB, dir="b", limit="50")["chunk"]) == ["after invite"]


def test_world_readable_room_readable_by_anyone():
    svc = make_service()
    api = Api(svc)
    room = new_room(
        api,
        initial_state=[
            {
                "type": "m.room.history_visibility",
                "content": {"history_visibility": "world_readable"},
            }
        ],
    )
    say(api, room, ALICE, "public notes")
    assert bodies(messages(api, room, CAROL, dir="b")["chunk"]) == ["public notes"]
    assert api.call("GET", f"{V3}/rooms/{room}/state", CAROL)[0] == 200


def test_event_and_context(room_with_messages):
    svc, api, room = room_with_messages
    page = messages(api, room, ALICE, dir="b", limit="12")
    target = page["chunk"][5]  # m6
    status, ev = api.call("GET", f"{V3}/rooms/{room}/event/{target['event_id']}", ALICE)
    assert status == 200 and ev["content"]["body"] == "m6" and ev["room_id"] == room
    assert api.status("GET", f"{V3}/rooms/{room}/event/$nope", ALICE) == (404, "M_NOT_FOUND")
    status, ctx = api.call(
        "GET", f"{V3}/rooms/{room}/context/{target['event_id']}", ALICE, query={"limit": "4"}
    )
    assert ctx["event"]["event_id"] == target["event_id"]
    assert bodies(ctx["events_before"]) == ["m5", "m4"]
    assert bodies(ctx["events_after"]) == ["m7", "m8"]
    assert any(s["type"] == "m.room.create" for s in ctx["state"])
    # the tokens continue pagination from both ends
    older = messages(api, room, ALICE, dir="b", limit="1", **{"from": ctx["start"]})
    newer = messages(api, room, ALICE, dir="f", limit="1", **{"from": ctx["end"]})
    assert bodies(older["chunk"]) == ["m3"] and bodies(newer["chunk"]) == ["m9"]


def test_state_endpoints(room_with_messages):
    svc, api, room = room_with_messages
    status, state = api.call("GET", f"{V3}/rooms/{room}/state", ALICE)
    assert {(e["type"], e["state_key"]) for e in state} >= {
        ("m.room.create", ""),
        ("m.room.member", ALICE),
    }
    status, out = api.call("PUT", f"{V3}/rooms/{room}/state/m.room.topic/", ALICE, {"topic": "t"})
    assert status == 200 and out["event_id"].startswith("$")
    assert api.call("GET", f"{V3}/rooms/{room}/state/m.room.topic", ALICE) == (200, {"topic": "t"})
    status, full = api.call(
        "GET", f"{V3}/rooms/{room}/state/m.room.topic/", ALICE, query={"format": "event"}
    )
    assert full["event_id"] == out["event_id"] and full["state_key"] == ""
    assert api.status("GET", f"{V3}/rooms/{room}/state/m.room.avatar", ALICE) == (
        404,
        "M_NOT_FOUND",
    )
    # custom state with a key
    api.call("PUT", f"{V3}/rooms/{room}/state/org.school.timetable/week1", ALICE, {"a": 1})
    assert api.call("GET", f"{V3}/rooms/{room}/state/org.school.timetable/week1", ALICE) == (
        200,
        {"a": 1},
    )
    # body must be a JSON object
    assert api.status("PUT", f"{V3}/rooms/{room}/state/m.room.topic", ALICE, b"[1]") == (
        400,
        "M_BAD_JSON",
    )


def test_members_filters(room_with_messages):
    svc, api, room = room_with_messages
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    api.call("POST", f"{V3}/rooms/{room}/invite", ALICE, {"user_id": CAROL})
    at_before_invite = svc.current_stream_ordering() - 1

    def members(**q):
        chunk = api.call("GET", f"{V3}/rooms/{room}/members", ALICE, query=q)[1]["chunk"]
        return sorted(e["state_key"] for e in chunk)

    assert members() == sorted([ALICE, BOB, CAROL])
    assert members(membership="join") == sorted([ALICE, BOB])
    assert members(not_membership="join") == [CAROL]
    assert members(membership="invite", not_membership="invite") == sorted([ALICE, BOB, CAROL])
    assert members(at=f"s{at_before_invite}") == sorted([ALICE, BOB])
    assert api.status("GET", f"{V3}/rooms/{room}/members", ALICE, query={"membership": "nope"}) == (
        400,
        "M_INVALID_PARAM",
    )
    status, jm = api.call("GET", f"{V3}/rooms/{room}/joined_members", BOB)
    assert jm == {"joined": {ALICE: {"display_name": "Alice"}, BOB: {"display_name": "Bob"}}}


def test_redacted_event_in_messages(room_with_messages):
    svc, api, room = room_with_messages
    target = messages(api, room, ALICE, dir="b", limit="1")["chunk"][0]
    api.call("PUT", f"{V3}/rooms/{room}/redact/{target['event_id']}/r1", ALICE, {"reason": "spam"})
    chunk = messages(api, room, ALICE, dir="b", limit="2")["chunk"]
    assert chunk[0]["type"] == "m.room.redaction" and chunk[0]["redacts"] == target["event_id"]
    assert chunk[1]["event_id"] == target["event_id"] and chunk[1]["content"] == {}
    assert chunk[1]["unsigned"]["redacted_because"]["content"]["reason"] == "spam"
    # a repeated redact transaction returns the same event
    again = api.call("PUT", f"{V3}/rooms/{room}/redact/{target['event_id']}/r1", ALICE, {})
    assert again[1]["event_id"] == chunk[0]["event_id"]


def test_send_rejects_bad_content(room_with_messages):
    svc, api, room = room_with_messages
    assert api.status("PUT", f"{V3}/rooms/{room}/send/m.room.message/x1", ALICE, {"n": 1.5}) == (
        400,
        "M_BAD_JSON",
    )
    assert api.status("PUT", f"{V3}/rooms/{room}/send/m.room.message/x2", ALICE, b"not json") == (
        400,
        "M_NOT_JSON",
    )
    with pytest.raises(MatrixError):
        api.call("PUT", f"{V3}/rooms/{room}/send/m.room.redaction/x3", ALICE, {})


def test_visibility_timelines_cached_and_kept_current():
    svc = make_service()
    api = Api(svc)
    room = new_room(api, preset="public_chat")
    api.call("POST", f"{V3}/rooms/{room}/join", BOB, {})
    first = result_of(svc.visibility_timelines(room, BOB))
    runs = svc.db.runs
    assert result_of(svc.visibility_timelines(room, BOB)) == first
    assert svc.db.runs == runs  # served from memory
    api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {})
    api.call(
        "PUT",
        f"{V3}/rooms/{room}/state/m.room.history_visibility",
        ALICE,
        {"history_visibility": "joined"},
    )
    cached = result_of(svc.visibility_timelines(room, BOB))
    fresh = make_service(svc.db)  # same DB, empty caches
    assert cached == result_of(fresh.visibility_timelines(room, BOB))
    assert [m for _, m in cached[0]] == ["join", "leave"]
    assert [v for _, v in cached[1]] == ["shared", "joined"]


def test_oversized_event_is_413(room_with_messages):
    svc, api, room = room_with_messages
    assert api.status(
        "PUT", f"{V3}/rooms/{room}/send/m.room.message/big", ALICE, {"body": "x" * 70000}
    ) == (413, "M_TOO_LARGE")
