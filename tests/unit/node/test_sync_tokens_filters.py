"""Sync tokens (client-server API "Syncing") and filters ("Filtering")."""

from __future__ import annotations

import pytest

from federation.errors import BadJSON, InvalidParam
from node.filtering import (
    DEFAULT_FILTER,
    DEFAULT_TIMELINE_LIMIT,
    MAX_LIMIT,
    parse_filter,
    project_fields,
    split_field_path,
    type_matches,
)
from node.stream_tokens import StreamToken, events_position, events_token, parse_sync_token


# --- tokens -----------------------------------------------------------------------------
def test_token_round_trip():
    tok = StreamToken(
        events=12, typing=4, receipts=7, account_data=3, presence=2, to_device=9, device_lists=5
    )
    assert str(tok) == "s12_4_7_3_2_9_5"
    assert parse_sync_token("s12_4_7_3_2_9_5") == tok
    assert parse_sync_token("s12_4_7_3_2") == StreamToken(12, 4, 7, 3, 2)
    assert parse_sync_token("s12_4_7_3") == StreamToken(12, 4, 7, 3)  # older tokens


def test_short_token_reads_missing_streams_as_zero():
    assert parse_sync_token("s42") == StreamToken(42, 0, 0, 0)
    assert parse_sync_token("s42_1") == StreamToken(42, 1, 0, 0)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "s",
        "x12_1_1_1",
        "s12__1",
        "s-1_0_0_0",
        "s1_2_3_4_5_6_7_8_9_10",
        "s12_a_1_1",
        "12_1_1_1",
        "s١٢",
        "s 1",
        "s1_2_3_",
        "s" + "9" * 30,
    ],
)
def test_invalid_tokens_are_m_invalid_param(bad):
    with pytest.raises(InvalidParam) as err:
        parse_sync_token(bad)
    assert err.value.errcode == "M_INVALID_PARAM"
    assert err.value.http_status == 400


def test_events_position_accepts_sync_and_pagination_tokens():
    assert events_position("s123") == 123
    assert events_position("s123_4_5_6") == 123
    assert events_token(99) == "s99"
    assert events_token(-1) == "s0"
    with pytest.raises(InvalidParam):
        events_position("t12-3")


def test_token_comparison_helpers():
    a = StreamToken(5, 1, 0, 2)
    assert StreamToken(5, 2, 0, 2).advanced_past(a)
    assert not StreamToken(5, 1, 0, 2).advanced_past(a)
    assert not StreamToken(4, 9, 0, 0).advanced_past(StreamToken(4, 9, 0, 0))
    assert a.max(StreamToken(3, 7, 1, 0)) == StreamToken(5, 7, 1, 2)


# --- filters ----------------------------------------------------------------------------
SPEC_EXAMPLE = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {
            "limit": 10,
            "types": ["m.room.message"],
            "not_rooms": ["!726s6s6q:example.com"],
            "not_senders": ["@spam:example.com"],
        },
        "ephemeral": {
            "types": ["m.receipt", "m.typing"],
            "not_rooms": ["!726s6s6q:example.com"],
            "not_senders": ["@spam:example.com"],
        },
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


def test_spec_example_filter_parses_and_applies():
    f = parse_filter(SPEC_EXAMPLE)
    assert f.timeline_limit == 10
    tl = f.room.timeline
    assert tl.allows("m.room.message", "@bob:example.com", {}, "!other:example.com")
    assert not tl.allows("m.room.message", "@spam:example.com", {}, "!other:example.com")
    assert not tl.allows("m.room.member", "@bob:example.com")
    assert not tl.allows("m.room.message", "@bob:example.com", {}, "!726s6s6q:example.com")
    st = f.room.state
    assert st.allows("m.room.name", "@bob:example.com")
    assert not st.allows("m.custom", "@bob:example.com")
    assert f.event_fields == ("type", "content", "sender")


def test_defaults():
    assert DEFAULT_FILTER.timeline_limit == DEFAULT_TIMELINE_LIMIT
    assert parse_filter({}) == DEFAULT_FILTER
    assert DEFAULT_FILTER.room_allowed("!a:x")
    assert not DEFAULT_FILTER.lazy_load_members
    assert DEFAULT_FILTER.room.timeline.allows("anything", "@x:y", {"url": "mxc://a/b"})


def test_wildcards_and_not_lists_win():
    assert type_matches("m.room.message", ["m.*"])
    assert type_matches("m.room.message", ["*.message"])
    assert not type_matches("m.room.message", ["m.room"])
    assert type_matches("m.room", ["m.room"])
    assert not type_matches("mxroom", ["m.room"])  # the dot is literal
    f = parse_filter(
        {
            "room": {
                "timeline": {
                    "types": ["m.*"],
                    "not_types": ["m.room.member"],
                    "senders": ["@a:x"],
                    "not_senders": ["@a:x"],
                }
            }
        }
    )
    assert not f.room.timeline.allows("m.room.member", None)
    # A sender in both lists is excluded.
    assert not f.room.timeline.allows("m.room.message", "@a:x")
    # Events without a sender (ephemeral, account data) skip sender checks.
    assert f.room.timeline.allows("m.room.message", None)


def test_rooms_and_contains_url():
    f = parse_filter(
        {
            "room": {
                "rooms": ["!a:x", "!b:x"],
                "not_rooms": ["!b:x"],
                "timeline": {"contains_url": True},
            }
        }
    )
    assert f.room_allowed("!a:x")
    assert not f.room_allowed("!b:x")
    assert not f.room_allowed("!c:x")
    assert f.room.timeline.allows("m.room.message", "@u:x", {"url": "mxc://x/y"})
    assert not f.room.timeline.allows("m.room.message", "@u:x", {"body": "hi"})
    g = parse_filter({"room": {"timeline": {"contains_url": False}}})
    assert not g.room.timeline.allows("m.room.message", "@u:x", {"url": "mxc://x/y"})


def test_lazy_loading_flags():
    f = parse_filter(
        {"room": {"state": {"lazy_load_members": True, "include_redundant_members": True}}}
    )
    assert f.lazy_load_members and f.include_redundant_members
    g = parse_filter({"room": {"state": {"include_redundant_members": True}}})
    assert not g.include_redundant_members  # does not apply without lazy loading


def test_limit_is_capped():
    f = parse_filter({"room": {"timeline": {"limit": 10**9}}})
    assert f.timeline_limit == MAX_LIMIT


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "x",
        {"event_format": "xml"},
        {"event_fields": "type"},
        {"event_fields": [1]},
        {"room": []},
        {"room": {"rooms": "!a:x"}},
        {"room": {"timeline": {"limit": 0}}},
        {"room": {"timeline": {"limit": "5"}}},
        {"room": {"timeline": {"limit": True}}},
        {"room": {"state": {"lazy_load_members": "yes"}}},
        {"room": {"timeline": []}},
        {"presence": {"types": [1]}},
        {"room": {"include_leave": 1}},
    ],
)
def test_bad_filters_are_m_bad_json(bad):
    with pytest.raises(BadJSON) as err:
        parse_filter(bad)
    assert err.value.errcode == "M_BAD_JSON"


def test_event_fields_projection():
    ev = {
        "type": "m.room.message",
        "sender": "@a:x",
        "event_id": "$e",
        "content": {"body": "hi", "msgtype": "m.text", "a.b": 1},
        "unsigned": {"age": 3},
    }
    assert project_fields(ev, ["type", "content.body"]) == {
        "type": "m.room.message",
        "content": {"body": "hi"},
    }
    assert project_fields(ev, ["content.a\\.b", "missing.x"]) == {"content": {"a.b": 1}}
    assert project_fields(ev, None) is ev
    assert split_field_path("content.m\\.relates_to.rel_type") == [
        "content",
        "m.relates_to",
        "rel_type",
    ]
    assert split_field_path("a\\\\.b") == ["a\\", "b"]
