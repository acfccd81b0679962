"""E2E property-based fuzzing: hostile JSON and hostile identifiers at the client API of a
running node (SQLite and PostgreSQL).

Hypothesis generates request bodies (objects nested up to 400 levels, integers far beyond
2^64, floats, NUL and other control characters, lone surrogate escapes, long strings, huge
lists) and path segments (the same characters percent-encoded) and sends them to the
endpoints a logged-in pupil or an anonymous caller can reach.  Every answer must be a
Matrix answer: never 500, every error with an ``errcode``.  After each endpoint's run the
node still answers ``/versions`` and another user's ``/sync``.

The runs are derandomised (the same examples every time, so CI is reproducible); set
``PARTA_FUZZ_RANDOM=1`` to explore new ones locally and ``PARTA_FUZZ_EXAMPLES`` for more.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2e_helpers import api, http_request

V3 = "/_matrix/client/v3"
EXAMPLES = int(os.environ.get("PARTA_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("PARTA_FUZZ_RANDOM"),
    suppress_health_check=list(HealthCheck),
)

# --- strategies ----------------------------------------------------------------------------
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=8),  # C0 incl. NUL
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\ud800",
            "\udfff",
            "*" * 300 + "!",
            "..",
            "/",
            "%00",
            "#a:b",
            "@x:y",
            "!r:s",
            "$e",
            "\u202e",
            "\ufeff",
            "m.room.*",
        ]
    ),
    st.text(min_size=300, max_size=5000),
)
huge_int = st.one_of(
    st.integers(),
    st.integers(min_value=2**53, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**53)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    huge_int,
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def deeply_nested(draw: Any) -> Any:
    depth = draw(st.integers(min_value=50, max_value=400))
    value: Any = draw(scalars)
    as_dict = draw(st.booleans())
    for _ in range(depth):
        value = {"k": value} if as_dict else [value]
    return value


bodies = st.one_of(
    st.dictionaries(hostile_text, json_values, max_size=6),
    st.builds(lambda v: {"x": v}, deeply_nested()),
    st.builds(lambda n: {"list": [0] * n}, st.integers(min_value=1000, max_value=100_000)),
    json_values,
)


def _dump(value: Any) -> bytes:
    # json.dumps writes lone surrogates as escapes and big integers in full: both hostile.
    return json.dumps(value).encode()


def _segment(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "empty"


# --- the node and its users ------------------------------------------------------------------
@pytest.fixture(scope="module")
def target(node_factory):
    node = node_factory()
    pupil = node.register("fuzzpupil")
    bystander = node.register("fuzzbystander")
    status, room = api(
        node,
        "POST",
        f"{V3}/createRoom",
        token=pupil["access_token"],
        json_body={"preset": "private_chat"},
    )
    assert status == 200, room
    return {"node": node, "pupil": pupil, "bystander": bystander, "room": room["room_id"]}


def _check(status: int, body: Any, what: str) -> None:
    assert status != 500, f"{what}: 500 {body!r:.300}"
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("errcode"), str), (
            f"{what}: {status} without a Matrix errcode: {body!r:.300}"
        )


def _call(
    target: dict, method: str, path: str, raw: bytes | None, auth: bool = True
) -> tuple[int, Any]:
    token = target["pupil"]["access_token"] if auth else None
    return api(
        target["node"],
        method,
        path,
        token=token,
        raw_body=raw,
        headers={"Content-Type": "application/json"},
    )


def _still_serving(target: dict) -> None:
    node = target["node"]
    assert http_request("GET", node.base_url + "/_matrix/client/versions")[0] == 200
    status, body = api(
        node, "GET", f"{V3}/sync?timeout=0", token=target["bystander"]["access_token"]
    )
    assert status == 200, body


# --- properties ------------------------------------------------------------------------------
ENDPOINTS = [
    ("POST", "/createRoom", True),
    ("PUT", "/rooms/{room}/send/m.room.message/{seg}", True),
    ("PUT", "/rooms/{room}/state/org.example.fuzz/{seg}", True),
    ("PUT", "/user/{me}/account_data/{seg}", True),
    ("PUT", "/user/{me}/rooms/{room}/account_data/{seg}", True),
    ("POST", "/user/{me}/filter", True),
    ("PUT", "/profile/{me}/displayname", True),
    ("PUT", "/rooms/{room}/typing/{me}", True),
    ("POST", "/rooms/{room}/receipt/m.read/{seg}", True),
    ("PUT", "/directory/room/{seg}", True),
    ("POST", "/login", False),
    ("POST", "/register", False),
]


@pytest.mark.parametrize(
    "method,template,auth", ENDPOINTS, ids=[f"{m} {t}" for m, t, _ in ENDPOINTS]
)
def test_hostile_bodies_and_segments(target, method: str, template: str, auth: bool):
    me = quote(target["pupil"]["user_id"])
    room = quote(target["room"])

    @FUZZ
    @given(body=bodies, segment=hostile_text)
    def prop(body: Any, segment: str) -> None:
        path = V3 + template.format(room=room, me=me, seg=_segment(segment))
        status, answer = _call(target, method, path, _dump(body), auth)
        _check(status, answer, f"{method} {path[:120]}")

    prop()
    _still_serving(target)


def test_hostile_sync_and_messages_filters(target):
    room = quote(target["room"])

    @FUZZ
    @given(filter_value=st.one_of(json_values, deeply_nested(), hostile_text))
    def sync(filter_value: Any) -> None:
        raw = filter_value if isinstance(filter_value, str) else json.dumps(filter_value)
        path = f"{V3}/sync?timeout=0&filter={_segment(raw)}"
        status, answer = _call(target, "GET", path[:30000], None)
        _check(status, answer, "GET /sync?filter=...")

    @FUZZ
    @given(filter_value=st.one_of(json_values, deeply_nested()), token=hostile_text)
    def messages(filter_value: Any, token: str) -> None:
        path = (
            f"{V3}/rooms/{room}/messages?dir=b&filter={_segment(json.dumps(filter_value))}"
            f"&from={_segment(token)}"
        )
        status, answer = _call(target, "GET", path[:30000], None)
        _check(status, answer, "GET /messages")

    sync()
    messages()
    _still_serving(target)


def test_hostile_bytes_as_bodies(target):
    """Bodies that are not JSON text at all: invalid UTF-8, BOMs, NaN, truncated input."""
    me = quote(target["pupil"]["user_id"])

    @FUZZ
    @given(
        raw=st.one_of(
            st.binary(max_size=300),
            st.sampled_from(
                [
                    b"\xef\xbb\xbf{}",
                    b'{"a": NaN}',
                    b"[" * 5000,
                    b'{"a": 1e999}',
                    b"\xff\xfe{\x00}\x00",
                    b'{"a": "\\ud800"}',
                    b"1" * 5000,
                    b"{" * 100000,
                ]
            ),
        )
    )
    def prop(raw: bytes) -> None:
        for method, path in (
            ("POST", f"{V3}/user/{me}/filter"),
            ("POST", f"{V3}/login"),
            ("PUT", f"{V3}/user/{me}/account_data/org.example.raw"),
        ):
            status, answer = _call(target, method, path, raw)
            _check(status, answer, f"{method} {path} with {raw[:40]!r}")

    prop()
    _still_serving(target)
