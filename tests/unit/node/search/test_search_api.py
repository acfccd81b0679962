"""POST /search in-process: what a client sees (results, visibility, paging, errors)."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from node.search.backfill import run_backfill
from search_support import ALICE, BOB, CAROL, V3, SearchApi


def events_of(body):
    return body["search_categories"]["room_events"]


@pytest.fixture
def api():
    return SearchApi()


def test_finds_messages_names_and_topics(api):
    room = api.room(name="Biology 7b", topic="Photosynthesis and cells")
    api.say(room, ALICE, "Homework: read chapter four on cells")
    status, body = api.search(ALICE, "cells")
    assert status == 200
    res = events_of(body)
    assert res["count"] == 2
    assert res["highlights"] == ["cells"]
    assert {r["result"]["type"] for r in res["results"]} == {"m.room.message", "m.room.topic"}
    assert all(isinstance(r["rank"], float) for r in res["results"])
    assert api.found(ALICE, "biology") == [None]  # the m.room.name event
    assert api.found(ALICE, "photosynthesis", keys=["content.body"]) == []
    assert api.found(ALICE, "homew") == ["Homework: read chapter four on cells"]  # prefix


def test_words_must_all_match_and_case_does_not_matter(api):
    room = api.room()
    api.say(room, ALICE, "Quiz on Friday")
    api.say(room, ALICE, "Quiz moved")
    assert api.found(ALICE, "QUIZ friday") == ["Quiz on Friday"]


def test_recent_order_and_paging(api):
    room = api.room()
    for i in range(7):
        api.say(room, ALICE, f"essay draft {i}")
    seen = []
    token = None
    while True:
        status, body = api.search(
            ALICE, "essay", next_batch=token, order_by="recent", filter={"limit": 3}
        )
        res = events_of(body)
        seen += [r["result"]["content"]["body"] for r in res["results"]]
        token = res.get("next_batch")
        if token is None:
            break
    assert seen == [f"essay draft {i}" for i in range(6, -1, -1)]


def test_rank_order_paging_returns_everything_once(api):
    room = api.room()
    for i in range(5):
        api.say(room, ALICE, "maths " * (i + 1) + f"n{i}")
    token, seen = None, []
    for _ in range(5):
        res = events_of(api.search(ALICE, "maths", next_batch=token, filter={"limit": 2})[1])
        seen += [r["result"]["content"]["body"] for r in res["results"]]
        ranks = [r["rank"] for r in res["results"]]
        assert ranks == sorted(ranks, reverse=True)
        token = res.get("next_batch")
        if token is None:
            break
    assert sorted(seen) == sorted("maths " * (i + 1) + f"n{i}" for i in range(5))


def test_other_users_private_rooms_are_never_searched(api):
    private = api.room(ALICE, preset="private_chat")
    api.say(private, ALICE, "secret exam answers")
    assert api.found(BOB, "secret") == []
    assert events_of(api.search(BOB, "secret")[1])["count"] == 0
    public = api.room(ALICE, preset="public_chat")
    api.say(public, ALICE, "secret handshake")
    # Public but never joined: not searched either (rooms the user is or was in).
    assert api.found(BOB, "secret") == []
    api.join(public, BOB)
    assert api.found(BOB, "secret") == ["secret handshake"]


def test_left_room_stops_at_the_leave(api):
    room = api.room(ALICE, preset="public_chat")
    api.join(room, BOB)
    api.say(room, ALICE, "trip before")
    api.leave(room, BOB)
    api.say(room, ALICE, "trip after")
    assert api.found(BOB, "trip") == ["trip before"]
    assert events_of(api.search(BOB, "trip")[1])["count"] == 1
    # Even a world-readable room: nothing after the user's leave.
    api.state(room, ALICE, "m.room.history_visibility", {"history_visibility": "world_readable"})
    api.say(room, ALICE, "trip later")
    assert api.found(BOB, "trip") == ["trip before"]


def test_forgotten_rooms_are_not_searched(api):
    room = api.room(ALICE, preset="public_chat")
    api.join(room, BOB)
    api.say(room, ALICE, "lunch menu")
    api.leave(room, BOB)
    api.call("POST", f"{V3}/rooms/{room}/forget", BOB, {})
    assert api.found(BOB, "lunch") == []


@pytest.mark.parametrize(
    "visibility, before_join_visible",
    [("shared", True), ("joined", False), ("invited", False), ("world_readable", True)],
)
def test_history_visibility_before_joining(api, visibility, before_join_visible):
    room = api.room(ALICE, preset="public_chat")
    api.state(room, ALICE, "m.room.history_visibility", {"history_visibility": visibility})
    api.say(room, ALICE, "notes early")
    api.join(room, BOB)
    api.say(room, ALICE, "notes late")
    expected = ["notes late", "notes early"] if before_join_visible else ["notes late"]
    assert api.found(BOB, "notes", order_by="recent") == expected
    # The count is limited to what the user may see too (no leak of hidden matches).
    assert events_of(api.search(BOB, "notes")[1])["count"] == len(expected)


def test_invited_visibility_shows_events_from_the_invite(api):
    room = api.room(ALICE, preset="private_chat")
    api.state(room, ALICE, "m.room.history_visibility", {"history_visibility": "invited"})
    api.say(room, ALICE, "plan before invite")
    api.invite(room, ALICE, BOB)
    api.say(room, ALICE, "plan while invited")
    api.join(room, BOB)
    api.say(room, ALICE, "plan joined")
    assert api.found(BOB, "plan", order_by="recent") == ["plan joined", "plan while invited"]


def test_redacted_events_leave_the_index(api):
    room = api.room()
    eid = api.say(room, ALICE, "embarrassing typo")
    api.say(room, ALICE, "typo fixed")
    api.call("PUT", f"{V3}/rooms/{room}/redact/{eid}/r1", ALICE, {})
    assert api.found(ALICE, "typo") == ["typo fixed"]
    assert api.found(ALICE, "embarrassing") == []


def test_filter_rooms_senders_and_types(api):
    r1 = api.room(ALICE, preset="public_chat", name="Chess club")
    r2 = api.room(ALICE, preset="public_chat")
    api.join(r1, BOB)
    api.join(r2, BOB)
    api.say(r1, ALICE, "chess tonight")
    api.say(r2, BOB, "chess tomorrow")
    assert api.found(BOB, "chess", filter={"rooms": [r2]}) == ["chess tomorrow"]
    assert sorted(api.found(BOB, "chess", filter={"not_rooms": [r2]}), key=str) == sorted(
        [None, "chess tonight"], key=str
    )
    assert api.found(BOB, "chess", filter={"senders": [BOB]}) == ["chess tomorrow"]
    assert None not in api.found(BOB, "chess", filter={"types": ["m.room.message"]})
    assert api.found(BOB, "chess", filter={"not_types": ["m.room.*"]}) == []
    assert api.found(BOB, "chess", filter={"senders": [CAROL]}) == []


@pytest.mark.parametrize(
    "term",
    ['"foo', "NEAR(", "*", "foo AND", "a OR b", "-x", "^x", "col:x", "'", "\\", "(((", "x" * 200],
)
def test_hostile_terms_never_fail(api, term):
    room = api.room()
    api.say(room, ALICE, "foo near a b x")
    status, body = api.search(ALICE, term)
    assert status == 200
    assert "results" in events_of(body)


def test_event_context_and_profiles(api):
    room = api.room(ALICE, preset="public_chat")
    api.join(room, BOB)
    api.say(room, ALICE, "one")
    api.say(room, BOB, "two target")
    api.say(room, ALICE, "three")
    res = events_of(
        api.search(
            ALICE,
            "target",
            event_context={"before_limit": 1, "after_limit": 1, "include_profile": True},
        )[1]
    )
    ctx = res["results"][0]["context"]
    assert [e["content"]["body"] for e in ctx["events_before"]] == ["one"]
    assert [e["content"]["body"] for e in ctx["events_after"]] == ["three"]
    assert ctx["start"].startswith("s") and ctx["end"].startswith("s")
    assert ctx["profile_info"][BOB] == {"displayname": "Bob"}


def test_context_does_not_leak_after_the_leave(api):
    room = api.room(ALICE, preset="public_chat")
    api.join(room, BOB)
    api.say(room, ALICE, "last words")
    api.leave(room, BOB)
    api.say(room, ALICE, "said after bob left")
    res = events_of(api.search(BOB, "words", event_context={"after_limit": 5})[1])
    after = res["results"][0]["context"]["events_after"]
    assert all(e.get("content", {}).get("body") != "said after bob left" for e in after)


def test_include_state_and_groups(api):
    r1 = api.room(ALICE, name="Room one")
    r2 = api.room(ALICE)
    api.say(r1, ALICE, "poster a")
    api.say(r2, ALICE, "poster b")
    res = events_of(
        api.search(
            ALICE,
            "poster",
            include_state=True,
            groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]},
        )[1]
    )
    assert set(res["state"]) == {r1, r2}
    assert any(e["type"] == "m.room.name" for e in res["state"][r1])
    groups = res["groups"]
    assert set(groups["room_id"]) == {r1, r2}
    assert sorted(g["order"] for g in groups["room_id"].values()) == [1, 2]
    assert len(groups["sender"][ALICE]["results"]) == 2


def test_group_next_batch_pages_within_the_group(api):
    r1 = api.room(ALICE)
    r2 = api.room(ALICE)
    for i in range(3):
        api.say(r1, ALICE, f"club r1 {i}")
        api.say(r2, ALICE, f"club r2 {i}")
    res = events_of(
        api.search(
            ALICE,
            "club",
            order_by="recent",
            filter={"limit": 2},
            groupings={"group_by": [{"key": "room_id"}]},
        )[1]
    )
    token = res["groups"]["room_id"][r1]["next_batch"]
    more = events_of(
        api.search(ALICE, "club", next_batch=token, order_by="recent", filter={"limit": 10})[1]
    )
    assert [r["result"]["content"]["body"] for r in more["results"]] == ["club r1 1", "club r1 0"]


@pytest.mark.parametrize(
    "body, errcode",
    [
        ({}, "M_MISSING_PARAM"),
        ({"search_categories": []}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
        ({"search_categories": {"room_events": {"search_term": 5}}}, "M_BAD_JSON"),
        (
            {"search_categories": {"room_events": {"search_term": "x", "keys": ["content.x"]}}},
            "M_INVALID_PARAM",
        ),
        (
            {"search_categories": {"room_events": {"search_term": "x", "order_by": "best"}}},
            "M_INVALID_PARAM",
        ),
        (
            {"search_categories": {"room_events": {"search_term": "x", "filter": {"limit": 0}}}},
            "M_BAD_JSON",
        ),
        (
            {
                "search_categories": {
                    "room_events": {"search_term": "x", "groupings": {"group_by": [{"key": "x"}]}}
                }
            },
            "M_INVALID_PARAM",
        ),
        ({"search_categories": {"room_events": {"search_term": "x" * 1001}}}, "M_INVALID_PARAM"),
    ],
)
def test_bad_requests(api, body, errcode):
    assert api.status("POST", V3 + "/search", ALICE, body) == (400, errcode)


def test_bad_or_mismatched_next_batch_is_400(api):
    room = api.room()
    for i in range(3):
        api.say(room, ALICE, f"pen {i}")
    body = {"search_categories": {"room_events": {"search_term": "pen"}}}
    assert api.status("POST", V3 + "/search", ALICE, body, query={"next_batch": "nope"}) == (
        400,
        "M_INVALID_PARAM",
    )
    res = events_of(api.search(ALICE, "pen", filter={"limit": 1})[1])
    recent = {"search_categories": {"room_events": {"search_term": "pen", "order_by": "recent"}}}
    assert api.status(
        "POST", V3 + "/search", ALICE, recent, query={"next_batch": res["next_batch"]}
    ) == (400, "M_INVALID_PARAM")


def test_no_category_answers_empty(api):
    assert api.call("POST", V3 + "/search", ALICE, {"search_categories": {}}) == (
        200,
        {"search_categories": {}},
    )


def test_limit_is_capped(api):
    room = api.room()
    for i in range(60):
        api.say(room, ALICE, f"word {i}")
    res = events_of(api.search(ALICE, "word", filter={"limit": 1000})[1])
    assert len(res["results"]) == 50
    assert "next_batch" in res


def test_backfill_indexes_events_stored_before_the_index(api):
    from sqlalchemy import delete, insert, select, text

    from schema.search import event_search, event_search_backfill

    room = api.room(topic="old topic")
    api.say(room, ALICE, "old homework")
    eid = api.say(room, ALICE, "old secret")
    api.call("PUT", f"{V3}/rooms/{room}/redact/{eid}/r1", ALICE, {})

    def forget_index(conn):  # as if the events were stored before the index existed
        conn.execute(delete(event_search))
        conn.execute(text("INSERT INTO event_search_fts(event_search_fts) VALUES ('rebuild')"))
        conn.execute(insert(event_search_backfill).values(id=1, below=1 << 40))

    api.db.run_sync(forget_index)
    assert api.found(ALICE, "old") == []
    assert result_of(run_backfill(api.db)) == 2  # the topic and the message, not the redacted
    assert sorted(api.found(ALICE, "old"), key=str) == sorted([None, "old homework"], key=str)
    assert api.found(ALICE, "secret") == []
    assert api.db.run_sync(lambda c: c.execute(select(event_search_backfill)).all()) == []
    assert result_of(run_backfill(api.db)) == 0  # done: nothing to walk at the next start


def test_rank_order_ranks_the_most_recent_hits_and_pages_stay_stable(api, monkeypatch):
    from node.search import query

    monkeypatch.setattr(query, "RANK_WINDOW", 4)
    room = api.room()
    for i in range(6):
        api.say(room, ALICE, f"lab {i}")
    res = events_of(api.search(ALICE, "lab", filter={"limit": 2})[1])
    seen = [r["result"]["content"]["body"] for r in res["results"]]
    api.say(room, ALICE, "lab new")  # arrives while the client pages
    while "next_batch" in res:
        res = events_of(
            api.search(ALICE, "lab", next_batch=res["next_batch"], filter={"limit": 2})[1]
        )
        seen += [r["result"]["content"]["body"] for r in res["results"]]
    assert sorted(seen) == ["lab 2", "lab 3", "lab 4", "lab 5"]
    assert res["count"] == 7  # the count is not limited to the ranked window
