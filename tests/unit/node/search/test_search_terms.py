"""Search terms as words and quoted engine queries; next_batch tokens."""

from __future__ import annotations

import pytest

from federation.errors import InvalidParam
from node.search.batch_token import Position, TokenCodec
from node.search.terms import MAX_TERM_CHARS, MAX_WORDS, fts5_query, tsquery, words


def test_words_split_on_everything_but_letters_and_digits():
    assert words('Hello, "World"! NEAR( foo*bar_baz 42 Café') == [
        "hello",
        "world",
        "near",
        "foo",
        "bar",
        "baz",
        "42",
        "café",
    ]


def test_words_are_distinct_and_capped():
    assert words("a a A") == ["a"]
    many = " ".join(f"w{i}" for i in range(MAX_WORDS + 10))
    assert len(words(many)) == MAX_WORDS


def test_operators_alone_are_no_words():
    assert words('" * ( ) - + : ^ AND') == ["and"]
    assert words('*** ((( """') == []


def test_term_too_long_is_invalid_param():
    with pytest.raises(InvalidParam):
        words("x" * (MAX_TERM_CHARS + 1))


def test_fts5_query_quotes_every_word_prefix_from_three_chars():
    assert fts5_query(["near", "or", "x"]) == '"near"* "or" "x"'


def test_tsquery_quotes_every_word():
    assert tsquery(["homework", "it"]) == "'homework':* & 'it'"


def test_token_round_trip():
    codec = TokenCodec(b"secret")
    for pos in (
        Position("rank", 20),
        Position("recent", 12345),
        Position("recent", -7, "room_id", "!r:x"),
        Position("rank", 3, "sender", "@a:x"),
    ):
        assert codec.decode(codec.encode(pos)) == pos


@pytest.mark.parametrize("bad", ["", "x", "!!!!", "a" * 5000, "é", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_garbage_tokens_are_invalid_param(bad):
    with pytest.raises(InvalidParam):
        TokenCodec(b"secret").decode(bad)


def test_tampered_or_foreign_tokens_are_invalid_param():
    codec = TokenCodec(b"secret")
    token = codec.encode(Position("recent", 100))
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    with pytest.raises(InvalidParam):
        codec.decode(flipped)
    with pytest.raises(InvalidParam):
        TokenCodec(b"other node").decode(token)


def test_searchable_values_per_spec_keys():
    from node.search.index import searchable_value

    assert searchable_value("m.room.message", {"body": "hi"}, None) == "hi"
    assert searchable_value("m.room.message", {"body": "hi"}, "") is None  # a state event
    assert searchable_value("m.room.message", {"body": 5}, None) is None
    assert searchable_value("m.room.name", {"name": "Chess"}, "") == "Chess"
    assert searchable_value("m.room.name", {"name": "Chess"}, "x") is None
    assert searchable_value("m.room.encrypted", {"body": "hi"}, None) is None
    # m.room.topic: content.topic and the text/plain body of content["m.topic"]
    rich = {"m.text": [{"mimetype": "text/html", "body": "<b>x</b>"}, {"body": "Plain words"}]}
    assert searchable_value("m.room.topic", {"topic": "T", "m.topic": rich}, "") == "T\nPlain words"
    assert searchable_value("m.room.topic", {"m.topic": rich}, "") == "Plain words"
    assert searchable_value("m.room.message", {"body": "a\x00b"}, None) == "a b"
