"""Canonical JSON (spec appendix "Signing JSON" > "Canonical JSON") and the strict parser."""

from __future__ import annotations

import collections
import enum
import json

import canonicaljson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation import canonical_json as cj
from federation.canonical_json import (
    MAX_SAFE_INT,
    MIN_SAFE_INT,
    CanonicalJSONError,
    check_canonical,
    encode_canonical_json,
    parse_json,
)
from federation.errors import BadJSON, NotJSON

# Both encoders must give identical bytes: the orjson fast path and the stdlib fallback.
ENCODERS = [
    pytest.param(encode_canonical_json, id="default"),
    pytest.param(cj._encode_stdlib_only, id="stdlib"),
]

# --- every example of the appendix, copied from the spec as data --------------------------

APPENDIX_EXAMPLES = [
    ("{}", b"{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', b'{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', b'{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', b'{"a":"1","b":"2"}'),
    (
        """{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}""",
        b'{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        b'"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        b'{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'.encode()),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'.encode()),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'.encode()),
    ('{\n    "a": null\n}', b'{"a":null}'),
    ('{\n    "a": -0,\n    "b": 1e10\n}', b'{"a":0,"b":10000000000}'),
]


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("given_json,expected", APPENDIX_EXAMPLES)
def test_appendix_examples_byte_for_byte(encode, given_json, expected):
    assert encode(parse_json(given_json.encode("utf-8"))) == expected


def test_appendix_examples_are_fixed_points():
    for _, expected in APPENDIX_EXAMPLES:
        assert encode_canonical_json(parse_json(expected)) == expected


# --- string escapes, per the appendix grammar ----------------------------------------------

_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("code", range(0x20))
def test_control_characters_use_the_grammar_escapes(encode, code):
    # escaped = b / t / n / f / r, otherwise "u00" + two lower-case hex digits.
    expected = _SHORT_ESCAPES.get(code, "\\u%04x" % code)
    assert encode(chr(code)) == ('"' + expected + '"').encode("ascii")


@pytest.mark.parametrize("encode", ENCODERS)
def test_only_quote_and_backslash_are_escaped_among_printables(encode):
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    out = encode(printable)
    assert out == ('"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()
    assert b"\\/" not in out  # solidus is not escaped


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize(
    "char",
    [
        "\x7f",
        "\u0080",
        "\u00e9",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\ufffe",
        "\uffff",
        "\U0001f600",
        "\U0010ffff",
    ],
)
def test_non_ascii_is_raw_utf8_never_escaped(encode, char):
    assert encode({"k": char}) == b'{"k":"' + char.encode("utf-8") + b'"}'


@pytest.mark.parametrize("encode", ENCODERS)
def test_keys_sort_by_code_point_not_utf16(encode):
    # In UTF-16 order U+1F600 (D83D DE00) would sort before U+E000 and U+FFFF.
    value = {"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "z": 4, "Z": 5, "é": 6, "": 7}
    assert encode(value) == (
        '{"":7,"Z":5,"z":4,"é":6,"\ue000":3,"\uffff":2,"\U0001f600":1}'
    ).encode("utf-8")


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("encode", ENCODERS)
def test_integer_range_bounds(encode):
    assert MAX_SAFE_INT == 9007199254740991 and MIN_SAFE_INT == -9007199254740991
    assert encode([MIN_SAFE_INT, 0, MAX_SAFE_INT]) == b"[-9007199254740991,0,9007199254740991]"
    for bad in (MAX_SAFE_INT + 1, MIN_SAFE_INT - 1, 2**64, -(2**64), 10**400):
        with pytest.raises(CanonicalJSONError, match=r"out of the canonical JSON range"):
            encode({"n": bad})


@pytest.mark.parametrize("encode", ENCODERS)
def test_out_of_range_integer_error_names_the_path(encode):
    value = {"content": {"items": [1, 2, {"count": 2**53}]}}
    with pytest.raises(CanonicalJSONError) as info:
        encode(value)
    assert info.value.path == "$.content.items[2].count"
    assert "$.content.items[2].count" in info.value.message
    assert info.value.errcode == "M_BAD_JSON" and isinstance(info.value, BadJSON)


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize(
    "number", [1.5, 1.0, -0.0, 0.0, 1e10, float("nan"), float("inf"), float("-inf")]
)
def test_floats_are_refused_with_path(encode, number):
    with pytest.raises(CanonicalJSONError, match="Float") as info:
        encode({"a": [0, {"weird key": number}]})
    assert info.value.path == '$.a[1]["weird key"]'


@pytest.mark.parametrize("encode", ENCODERS)
def test_booleans_are_booleans_not_integers(encode):
    assert (
        encode({"t": True, "f": False, "l": [True, False, 1, 0]})
        == b'{"f":false,"l":[true,false,1,0],"t":true}'
    )
    # Many booleans beside many ints take the large-container path of the scan too.
    many = [True, False] * 20 + [1, 0]
    assert encode(many) == json.dumps(many, separators=(",", ":")).encode()
    assert json.loads(encode(many))[:2] == [True, False]


@pytest.mark.parametrize("encode", ENCODERS)
def test_large_containers_are_checked_too(encode):
    ints = {f"u{i}": i for i in range(100)}
    assert encode(ints) == canonicaljson.encode_canonical_json(ints)
    ints["u50"] = 2**53
    with pytest.raises(CanonicalJSONError) as info:
        encode(ints)
    assert info.value.path == "$.u50"
    floats = ["x"] * 50 + [1.5]
    with pytest.raises(CanonicalJSONError) as info:
        encode(floats)
    assert info.value.path == "$[50]"


# --- keys, types, surrogates -----------------------------------------------------------


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("key", [1, None, True, (1, 2), 1.5])
def test_non_string_keys_are_refused(encode, key):
    with pytest.raises(CanonicalJSONError, match="keys must be strings") as info:
        encode({"outer": {key: "v"}})
    assert info.value.path == "$.outer"


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("thing", [b"bytes", {1, 2}, object(), bytearray(b"x")])
def test_non_json_types_are_refused(encode, thing):
    with pytest.raises(CanonicalJSONError, match="cannot be represented in JSON") as info:
        encode({"a": [thing]})
    assert info.value.path == "$.a[0]"


def test_decimal_is_refused():
    from decimal import Decimal

    with pytest.raises(CanonicalJSONError):
        encode_canonical_json({"a": Decimal(1)})


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize(
    "value,path",
    [
        ({"body": "ok \ud800 no"}, "$.body"),
        ({"list": ["fine", "\udfff"]}, "$.list[1]"),
        ({"k\udc00": 1}, None),
        ("\ud83d", "$"),  # half of a surrogate pair
    ],
)
def test_lone_surrogates_are_refused(encode, value, path):
    with pytest.raises(CanonicalJSONError, match="surrogate") as info:
        encode(value)
    if path is not None:
        assert info.value.path == path


@pytest.mark.parametrize("encode", ENCODERS)
def test_subclasses_of_json_types_encode_like_the_base_types(encode):
    class Level(enum.IntEnum):
        MOD = 50

    class Name(str):
        pass

    value = collections.OrderedDict([("z", Level.MOD), (Name("a"), Name("x")), ("m", (1, 2))])
    assert encode(value) == b'{"a":"x","m":[1,2],"z":50}'
    with pytest.raises(CanonicalJSONError, match="range"):
        encode({"big": type("Big", (int,), {})(2**60)})


def test_tuples_are_arrays():
    assert encode_canonical_json({"a": (1, "b", ())}) == b'{"a":[1,"b",[]]}'


def test_nesting_beyond_the_server_limit_is_refused_by_both_encoders():
    # A peer would refuse it (federation/json_limits.py), and orjson could not render it.
    value: object = "x"
    for _ in range(200):
        value = {"a": [value]}
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        encode_canonical_json(value)
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        cj._encode_stdlib_only(value)


def test_absurd_nesting_is_a_clean_error():
    value: object = 1
    for _ in range(100_000):
        value = [value]
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        encode_canonical_json(value)


def test_check_canonical():
    check_canonical({"a": [1, "b", None, True, {"c": MAX_SAFE_INT}]})
    with pytest.raises(CanonicalJSONError) as info:
        check_canonical({"content": {"x": 0.5}})
    assert info.value.path == "$.content.x"
    with pytest.raises(CanonicalJSONError, match="surrogate"):
        check_canonical({"content": {"x": "\ud800"}})
    with pytest.raises(CanonicalJSONError, match="keys must be strings"):
        check_canonical({1: 1})


# --- property test against the reference library ----------------------------------------

_TRICKY_CHARS = [chr(c) for c in range(0x20)] + [
    '"',
    "\\",
    "/",
    "\x7f",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "\ue000",
    "\U0001f600",
    "\U00010000",
    "\U0010ffff",
    "é",
    "日",
]
_strings = st.one_of(st.text(), st.text(alphabet=st.sampled_from(_TRICKY_CHARS)))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(MIN_SAFE_INT, MAX_SAFE_INT),
    st.integers(-300, 300),
    _strings,
)
json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=25), st.dictionaries(_strings, children, max_size=25)
    ),
    max_leaves=120,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_matches_reference_canonicaljson_library(value):
    expected = canonicaljson.encode_canonical_json(value)
    assert encode_canonical_json(value) == expected
    assert cj._encode_stdlib_only(value) == expected
    assert parse_json(expected) == value  # and our parser reads it back unchanged


@settings(max_examples=150, deadline=None)
@given(
    json_values,
    st.one_of(
        st.integers(max_value=MIN_SAFE_INT - 1),
        st.integers(min_value=MAX_SAFE_INT + 1),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
)
def test_any_bad_number_anywhere_is_refused(value, bad):
    for container in ({"v": value, "bad": bad}, [value, [bad]]):
        with pytest.raises(CanonicalJSONError):
            encode_canonical_json(container)
        with pytest.raises(CanonicalJSONError):
            cj._encode_stdlib_only(container)


# --- strict parser -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b'{"a":1}x',
        b"{'a': 1}",
        b'{"a":01}',
        b"[1,]",
        b"nul",
        b"\xff\xfe{}",
        b'{"a":"\xc3"}',
        b'"\xed\xa0\x80"',  # truncated UTF-8; UTF-8-encoded surrogate
        '{"a":1}'.encode("utf-16"),
        b"\xef\xbb\xbf{}",  # UTF-16 with BOM; UTF-8 BOM
    ],
)
def test_parse_not_json(body):
    with pytest.raises(NotJSON) as info:
        parse_json(body)
    assert info.value.errcode == "M_NOT_JSON"


@pytest.mark.parametrize("body", [b"NaN", b'{"a":Infinity}', b"[-Infinity]"])
def test_parse_refuses_non_finite_constants(body):
    with pytest.raises(BadJSON, match="not allowed") as info:
        parse_json(body)
    assert info.value.errcode == "M_BAD_JSON" and not isinstance(info.value, NotJSON)


@pytest.mark.parametrize("body", [b'"\\ud800"', b'{"\\uDC00":1}', b'["ok","\\ud83d x"]'])
def test_parse_refuses_lone_surrogate_escapes(body):
    with pytest.raises(BadJSON, match="surrogate"):
        parse_json(body)


def test_parse_refuses_raw_lone_surrogates_in_str_input():
    with pytest.raises(BadJSON, match="surrogate"):
        parse_json('{"a":"\ud800"}')


def test_parse_accepts_surrogate_pairs_and_escaped_backslashes():
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert parse_json(b'"\\\\ud800"') == "\\ud800"  # a backslash, then the text "ud800"


def test_parse_numbers():
    assert parse_json(b"[1.5, -2.25e-3]") == [1.5, -0.00225]  # floats allowed for clients
    value = parse_json(b"[1e10, 2.0, -0.0, 1E2, 9007199254740991.0, 9007199254740991]")
    assert value == [10000000000, 2, 0, 100, MAX_SAFE_INT, MAX_SAFE_INT]
    assert all(type(v) is int for v in value)
    big = parse_json(b"1e20")  # integral but outside the canonical range: stays a float
    assert isinstance(big, float)
    with pytest.raises(CanonicalJSONError):
        check_canonical(big)
    with pytest.raises(BadJSON, match="too large"):
        parse_json(b"1e400")
    with pytest.raises(BadJSON, match="range"):
        parse_json(b"12345678901234567890")  # integers: the canonical JSON range only
    with pytest.raises(BadJSON):
        parse_json(b"1" * 5000)  # longer than Python's int_max_str_digits


def test_parse_duplicate_keys_last_wins():
    assert parse_json(b'{"a":1,"a":2}') == {"a": 2}


def test_parse_deep_nesting_is_bad_json_not_a_crash():
    with pytest.raises(BadJSON, match="nested more than"):
        parse_json(b"[" * 200_000 + b"]" * 200_000)
    assert parse_json(b"[" * 100 + b"]" * 100) is not None


def test_parse_input_types():
    assert parse_json(bytearray(b'{"a":[]}')) == {"a": []}
    assert parse_json(memoryview(b'{"a":[]}')) == {"a": []}
    assert parse_json('{"a":"日"}') == {"a": "日"}
    assert parse_json('{"a":"日"}'.encode()) == {"a": "日"}
    with pytest.raises(TypeError):
        parse_json(123)  # type: ignore[arg-type]
