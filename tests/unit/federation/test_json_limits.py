"""The JSON nesting limit: the pre-parse scan, the parser and the encoder share one limit, so
nothing the node accepts can later fail to encode inside a response envelope."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.canonical_json import CanonicalJSONError, encode_canonical_json, parse_json
from federation.errors import BadJSON, NotJSON
from federation.json_limits import (
    MAX_JSON_DEPTH,
    MAX_SERVER_JSON_DEPTH,
    ORJSON_MAX_DEPTH,
    nesting_exceeds,
)


def depth_of(value: object) -> int:
    """Reference: containers nested, by a plain recursive walk."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


def lists(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def objects(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


# --- the scan ------------------------------------------------------------------------------

_TRICKY = st.lists(st.sampled_from(list('[]{}"\\ax') + ["\\\\", '\\"', "\n"]), max_size=8).map(
    "".join
)
_values = st.recursive(
    st.one_of(st.none(), st.integers(-5, 5), _TRICKY),
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(_TRICKY, children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values, st.integers(0, 12), st.booleans())
def test_scan_agrees_with_a_walk_of_the_parsed_value(value, limit, pretty):
    # Brackets, quotes and backslashes inside strings must not count; small limits
    # exercise every branch (passes, the running sum after eight passes).
    text = json.dumps(value, indent=1 if pretty else None).encode()
    assert nesting_exceeds(text, limit) == (depth_of(value) > limit)


@pytest.mark.parametrize("limit", [3, 8, 9, 20, MAX_JSON_DEPTH])
def test_scan_exact_at_the_limit_for_lists_and_objects(limit):
    for build in (lists, objects):
        # Many siblings keep the bracket count above the limit (no early exit).
        wide = [build(d) for d in range(limit + 1)]
        assert not nesting_exceeds(orjson.dumps(wide[:-1]), limit)  # depth == limit
        assert nesting_exceeds(orjson.dumps(wide), limit)  # depth == limit + 1


def test_scan_is_not_fooled_by_brackets_inside_strings():
    closers = '"' + "]" * 300 + '"'
    hidden = f"[{closers}, {json.dumps(lists(150))}]".encode()
    assert nesting_exceeds(hidden, 100)
    escaped = f'["\\\\\\"{"]" * 300}", {json.dumps(lists(150))}]'.encode()
    assert json.loads(escaped)[0].startswith('\\"')
    assert nesting_exceeds(escaped, 100)
    openers = json.dumps(["[" * 300, "{" * 300, lists(50)]).encode()
    assert not nesting_exceeds(openers, 100)


def test_scan_never_raises_on_garbage():
    for body in (b"[" * 500, b"]" * 500, b'"' * 500, b"[\\" * 300, b"{[}]" * 200):
        assert nesting_exceeds(body, 100) in (True, False)


# --- the parser ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", [lists, objects])
def test_parse_accepts_the_limit_and_refuses_one_more(build):
    at_limit = orjson.dumps(build(MAX_JSON_DEPTH))
    assert depth_of(parse_json(at_limit)) == MAX_JSON_DEPTH
    assert depth_of(parse_json(at_limit.decode())) == MAX_JSON_DEPTH  # str input too
    for body in (orjson.dumps(build(MAX_JSON_DEPTH + 1)), orjson.dumps(build(250))):
        with pytest.raises(BadJSON, match="nested more than 100 levels") as info:
            parse_json(body)
        assert info.value.errcode == "M_BAD_JSON" and not isinstance(info.value, NotJSON)


def test_parse_server_documents_get_the_envelope_margin():
    body = orjson.dumps({"pdus": [objects(MAX_SERVER_JSON_DEPTH - 2)]})
    with pytest.raises(BadJSON):
        parse_json(body)
    assert parse_json(body, max_depth=MAX_SERVER_JSON_DEPTH)["pdus"]
    with pytest.raises(BadJSON, match="nested more than 110 levels"):
        parse_json(
            orjson.dumps([body.decode(), lists(MAX_SERVER_JSON_DEPTH)]),
            max_depth=MAX_SERVER_JSON_DEPTH,
        )


def test_parse_refuses_integers_outside_the_canonical_range():
    assert parse_json(b"[9007199254740991,-9007199254740991]") == [2**53 - 1, -(2**53 - 1)]
    for text in (
        b"9007199254740992",
        b"-9007199254740992",
        b"18446744073709551617",
        b'{"a":[1,{"b":123456789012345678901234567890}]}',
        b"1" * 5000,
    ):
        with pytest.raises(BadJSON, match="canonical JSON range") as info:
            parse_json(text)
        assert info.value.errcode == "M_BAD_JSON" and not isinstance(info.value, NotJSON)
    # Digits inside strings are text, and numbers written as floats stay floats.
    assert parse_json(b'["123456789012345678901234567890", 1e20]') == [
        "123456789012345678901234567890",
        1e20,
    ]


# --- the encoder ---------------------------------------------------------------------------


def test_encoder_refuses_what_no_peer_would_parse():
    at_limit = lists(MAX_SERVER_JSON_DEPTH)
    assert encode_canonical_json(at_limit) == orjson.dumps(at_limit)
    for too_deep in (
        lists(MAX_SERVER_JSON_DEPTH + 1),
        objects(MAX_SERVER_JSON_DEPTH + 1),
        {"ok": [1, 2], "bad": [objects(MAX_SERVER_JSON_DEPTH)]},
    ):
        with pytest.raises(CanonicalJSONError, match="nested too deeply"):
            encode_canonical_json(too_deep)


def test_encoder_names_the_over_deep_path():
    value = {"content": {"a": lists(MAX_SERVER_JSON_DEPTH)}}
    with pytest.raises(CanonicalJSONError) as info:
        encode_canonical_json(value)
    assert info.value.path.startswith("$.content.a[0]")


def test_deepest_accepted_document_fits_in_the_deepest_response_envelope():
    # A /sync response holds an event's content ten levels down (rooms.join.<room>.timeline
    # .events[i].unsigned.redacted_because.content); a federation response fewer.
    content = objects(MAX_SERVER_JSON_DEPTH)
    response = {
        "rooms": {
            "join": {
                "!r": {
                    "timeline": {
                        "events": [{"unsigned": {"redacted_because": {"content": content}}}]
                    }
                }
            }
        }
    }
    assert depth_of(response) == MAX_SERVER_JSON_DEPTH + 9
    assert orjson.loads(orjson.dumps(response)) == response
    assert MAX_SERVER_JSON_DEPTH + 2 * 10 < ORJSON_MAX_DEPTH
    with pytest.raises(orjson.JSONEncodeError):  # the limit this all protects against
        orjson.dumps(lists(ORJSON_MAX_DEPTH + 1))
