"""Filters cannot freeze or exhaust the node (client-server API "Filtering",
https://spec.matrix.org/v1.16/client-server-api/#filtering): type globs are matched without
backtracking, and filter definitions are capped in list length, entry length and total size,
inline in ``/sync`` and when uploaded.
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.deferreds import result_of

from federation.errors import BadJSON
from node import filtering
from node.filtering import parse_filter, project_fields, type_matches
from test_sync_api import V3, Api
from test_sync_handler import ALICE, BOB, Node

# "*" runs in front of a literal that never matches: a backtracking matcher tries every way
# of splitting the type among the stars (C(len + stars, stars) ways).
HOSTILE = "*" * 40 + "!"


# --- glob semantics -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "pattern, event_type, expected",
    [
        ("", "", True),
        ("", "m.room", False),
        ("*", "", True),
        ("*", "m.room.message", True),
        ("m.*", "m.room.message", True),
        ("m.*", "m.", True),
        ("m.*", "m", False),
        ("*.message", "m.room.message", True),
        ("*.message", "message", False),
        ("*message", "message", True),
        ("m.*.message", "m.room.message", True),
        ("m.*.message", "m.message", False),
        ("m**.message", "m.room.message", True),
        ("***", "x", True),
        ("a***b", "ab", True),
        ("*a*b*", "xaybz", True),
        ("*a*b*", "ba", False),
        ("a*a", "a", False),
        ("m.room", "m.room", True),
        ("m.room", "m.rooms", False),
        # case-sensitive; only '*' is special: '?' and regex characters are literal
        ("M.room", "m.room", False),
        ("m.roo?", "m.room", False),
        ("m.roo?", "m.roo?", True),
        ("m.room", "mxroom", False),
        ("m.[r]oom", "m.room", False),
        ("m.[r]oom", "m.[r]oom", True),
        ("a\\*", "a\\xyz", True),
        ("a\\*", "axyz", False),
        ("a+", "aa", False),
        ("(a|b)", "a", False),
        ("^m$", "m", False),
        ("x{2}", "xx", False),
    ],
)
def test_type_glob_semantics(pattern, event_type, expected):
    assert type_matches(event_type, [pattern]) is expected
    flt = parse_filter({"room": {"timeline": {"types": [pattern]}}})
    assert flt.room.timeline.allows(event_type) is expected


def _reference(pattern: str, text: str) -> bool:
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(regex, text, re.DOTALL) is not None


@given(st.text(alphabet="ab*?.", max_size=8), st.text(alphabet="ab?.", max_size=10))
def test_type_glob_agrees_with_a_regex_translation(pattern, text):
    assert type_matches(text, [pattern]) is _reference(pattern, text)


@pytest.mark.timeout(60)
def test_hostile_type_pattern_answers_correctly():
    long_type = "m.room.message." + "x" * 240
    assert type_matches(long_type, [HOSTILE]) is False
    assert type_matches(long_type + "!", [HOSTILE]) is True
    assert type_matches(long_type, ["*m*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*y"]) is False
    flt = parse_filter(
        {"room": {"timeline": {"not_types": [HOSTILE] * 1000, "types": ["*" * 250 + "x"]}}}
    )
    assert flt.room.timeline.allows(long_type)
    assert not flt.room.timeline.allows(long_type + "!")
    assert not flt.room.timeline.allows("m.room.message")


# --- caps when parsing --------------------------------------------------------------------
_EVENT_FILTER_LISTS = ("types", "not_types", "senders", "not_senders", "rooms", "not_rooms")
_SECTIONS = [
    ("room", "timeline"),
    ("room", "state"),
    ("room", "ephemeral"),
    ("room", "account_data"),
    ("presence",),
    ("account_data",),
]


def _nest(path: tuple[str, ...], key: str, value) -> dict:
    obj: dict = {key: value}
    for part in reversed(path):
        obj = {part: obj}
    return obj


def _all_list_fields():
    for section in _SECTIONS:
        for key in _EVENT_FILTER_LISTS:
            yield section, key
    yield ("room",), "rooms"
    yield ("room",), "not_rooms"
    yield (), "event_fields"


@pytest.mark.parametrize("section, key", list(_all_list_fields()))
def test_list_lengths_are_capped(section, key):
    limit = filtering.MAX_FILTER_LIST_ENTRIES
    entries = [f"e{i}" for i in range(limit)]
    parse_filter(_nest(section, key, entries))  # at the limit: accepted
    with pytest.raises(BadJSON) as err:
        parse_filter(_nest(section, key, entries + ["one.more"]))
    assert err.value.errcode == "M_BAD_JSON"
    name = ".".join((*section, key))
    assert name in err.value.message and str(limit) in err.value.message


@pytest.mark.parametrize("section, key", list(_all_list_fields()))
def test_entry_lengths_are_capped(section, key):
    limit = filtering.MAX_FILTER_STRING_LENGTH
    parse_filter(_nest(section, key, ["x" * limit]))
    with pytest.raises(BadJSON) as err:
        parse_filter(_nest(section, key, ["ok", "x" * (limit + 1)]))
    name = ".".join((*section, key))
    assert name in err.value.message and str(limit) in err.value.message


@pytest.mark.parametrize("key", ["types", "not_types"])
def test_wildcards_per_type_list_are_capped(key):
    limit = filtering.MAX_TYPE_WILDCARDS
    # a run of '*' counts once: the hostile pattern has one wildcard
    parse_filter({"room": {"timeline": {key: [HOSTILE, "*", "m.**.x"] * 10}}})
    at_limit = ["a*b*c"] * 3 + [f"x{i}*" for i in range(limit - 2)]
    parse_filter({"room": {"timeline": {key: at_limit}}})
    with pytest.raises(BadJSON) as err:
        parse_filter({"room": {"timeline": {key: at_limit + ["*y*"]}}})
    assert f"room.timeline.{key}" in err.value.message and str(limit) in err.value.message


def test_answers_stay_right_past_the_memo():
    flt = parse_filter({"room": {"timeline": {"types": ["m.*.even", "x"]}}})
    for i in range(3 * filtering.TYPE_MEMO_LIMIT):
        kind = "even" if i % 2 == 0 else "odd"
        assert flt.room.timeline.allows(f"m.{i}.{kind}") is (i % 2 == 0)
    assert flt.room.timeline.allows("x") and not flt.room.timeline.allows("y")


def test_real_client_filters_are_accepted():
    # the shape Element sends, lazy loading and all
    parse_filter(
        {
            "room": {
                "state": {"lazy_load_members": True},
                "timeline": {
                    "limit": 20,
                    "unread_thread_notifications": True,
                    "not_types": ["m.call.*", "org.matrix.*"],
                },
            },
            "presence": {"not_types": ["*"]},
            "account_data": {"types": ["m.*"]},
            "event_fields": ["type", "content", "sender", "event_id"],
        }
    )


# --- event_fields -------------------------------------------------------------------------
def test_event_fields_projection_semantics():
    ev = {
        "type": "m.room.message",
        "sender": "@a:x",
        "content": {
            "body": "hi",
            "msgtype": "m.text",
            "a.b": 1,
            "c\\": {"d": 2},
            "m.relates_to": {"rel_type": "m.thread", "event_id": "$t"},
        },
    }
    before = orjson.dumps(ev)
    # a whole object wins over a path into it, in either order
    assert project_fields(ev, ["content.body", "content"]) == {"content": ev["content"]}
    assert project_fields(ev, ["content", "content.body"]) == {"content": ev["content"]}
    assert project_fields(
        ev,
        ["content.a\\.b", "content.c\\\\.d", "content.missing.x", "content.body.deeper", "sender"],
    ) == {"content": {"a.b": 1, "c\\": {"d": 2}}, "sender": "@a:x"}
    assert project_fields(ev, ["content.m\\.relates_to.rel_type"]) == {
        "content": {"m.relates_to": {"rel_type": "m.thread"}}
    }
    assert project_fields(ev, []) == {}
    assert orjson.dumps(ev) == before  # the event itself is untouched


@pytest.mark.timeout(60)
def test_many_event_fields_project_correctly():
    limit = filtering.MAX_FILTER_LIST_ENTRIES
    fields = tuple(f"content.k{i}.{'x' * 200}" for i in range(limit - 1)) + ("type",)
    flt = parse_filter({"event_fields": list(fields)})
    ev = {"type": "t", "content": {"k7": {"x" * 200: 1}, "other": 2}}
    for _ in range(2000):
        out = project_fields(ev, flt.event_fields)
    assert out == {"type": "t", "content": {"k7": {"x" * 200: 1}}}


# --- HTTP ---------------------------------------------------------------------------------
@pytest.fixture
def api():
    return Api(Node())


def _timeline_types(body, room):
    return [e["type"] for e in body["rooms"]["join"][room]["timeline"]["events"]]


@pytest.mark.timeout(60)
def test_hostile_inline_sync_filter_answers_and_others_still_sync(api):
    room = api.node.room(name="R")
    api.node.member(ALICE, room, BOB, "invite")
    api.node.member(BOB, room, BOB, "join")
    long_type = "org.example." + "y" * 200
    result_of(api.node.rooms.send_event(ALICE, room, long_type, {"n": 1}))
    api.node.send(ALICE, room, "hello")
    flt = {"room": {"timeline": {"limit": 50, "types": [HOSTILE]}}}
    status, body = api.call("GET", V3 + "/sync", query={"filter": orjson.dumps(flt).decode()})
    assert status == 200 and _timeline_types(body, room) == []
    flt = {"room": {"timeline": {"limit": 50, "types": ["*" * 40 + "yyyy", "*" * 40 + "message"]}}}
    status, body = api.call("GET", V3 + "/sync", query={"filter": orjson.dumps(flt).decode()})
    assert status == 200 and _timeline_types(body, room) == [long_type, "m.room.message"]
    status, body = api.call("GET", V3 + "/sync", user=BOB)
    assert status == 200 and "m.room.message" in _timeline_types(body, room)


def test_oversized_inline_sync_filters_are_400(api):
    limit = filtering.MAX_FILTER_LIST_ENTRIES
    for flt, field in [
        ({"room": {"timeline": {"types": ["m"] * (limit + 1)}}}, "room.timeline.types"),
        ({"room": {"not_rooms": ["!" + "r" * 300]}}, "room.not_rooms"),
        ({"event_fields": ["x"] * (limit + 1)}, "event_fields"),
    ]:
        status, err = api.call("GET", V3 + "/sync", query={"filter": orjson.dumps(flt).decode()})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        assert field in err["error"]
    # the whole definition: every list within its caps, too many bytes in all
    big = {"room": {"timeline": {"not_types": ["t" * 200] * 400}}}
    status, err = api.call("GET", V3 + "/sync", query={"filter": orjson.dumps(big).decode()})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    assert str(filtering.MAX_FILTER_BYTES) in err["error"]


def test_oversized_uploaded_filters_are_400(api):
    limit = filtering.MAX_FILTER_LIST_ENTRIES
    url = V3 + f"/user/{ALICE}/filter"
    status, err = api.call("POST", url, body={"presence": {"senders": ["@a:x"] * (limit + 1)}})
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    assert "presence.senders" in err["error"] and str(limit) in err["error"]
    big = {"room": {"timeline": {"not_types": ["t" * 200] * 400}}}
    status, err = api.call("POST", url, body=big)
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    assert str(filtering.MAX_FILTER_BYTES) in err["error"]
    # unknown keys count towards the size too
    status, err = api.call("POST", url, body={"junk": "j" * filtering.MAX_FILTER_BYTES})
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    # nothing was stored: the next filter is still number 1
    status, body = api.call("POST", url, body={"room": {"timeline": {"types": [HOSTILE]}}})
    assert status == 200 and body["filter_id"] == "1"


@pytest.mark.timeout(60)
def test_hostile_stored_filter_answers(api):
    room = api.node.room(name="R")
    api.node.send(ALICE, room, "hello")
    status, body = api.call(
        "POST",
        V3 + f"/user/{ALICE}/filter",
        body={"room": {"timeline": {"not_types": [HOSTILE] * 1000}}},
    )
    assert status == 200
    status, body = api.call("GET", V3 + "/sync", query={"filter": body["filter_id"]})
    assert status == 200 and "m.room.message" in _timeline_types(body, room)


def test_stored_filter_from_before_the_caps_is_refused_not_run(api):
    from node.sync.filter_store import _insert_filter

    room = api.node.room(name="R")
    old = {"room": {"timeline": {"types": ["*" * 5000 + "!"] * 3000}}}
    filter_id = result_of(api.node.db.run(_insert_filter, ALICE, orjson.dumps(old).decode()))
    status, err = api.call("GET", V3 + "/sync", query={"filter": str(filter_id)})
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    assert "upload a new filter" in err["error"]
    # the user's stored definition can still be read back
    assert api.call("GET", V3 + f"/user/{ALICE}/filter/{filter_id}") == (200, old)
    status, body = api.call("GET", V3 + "/sync")
    assert status == 200 and room in body["rooms"]["join"]
