"""Unpadded Base64 (spec appendix "Unpadded Base64", "URL-safe unpadded Base64")."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.b64 import Base64Error, decode_base64, encode_base64
from federation.errors import BadJSON

# The appendix's examples, as data.
APPENDIX_EXAMPLES = [
    (b"", ""),
    (b"f", "Zg"),
    (b"fo", "Zm8"),
    (b"foo", "Zm9v"),
    (b"foob", "Zm9vYg"),
    (b"fooba", "Zm9vYmE"),
    (b"foobar", "Zm9vYmFy"),
]


@pytest.mark.parametrize("raw,encoded", APPENDIX_EXAMPLES)
def test_appendix_examples(raw, encoded):
    assert encode_base64(raw) == encoded
    assert decode_base64(encoded) == raw
    assert encode_base64(raw, urlsafe=True) == encoded  # no 62/63 characters involved
    assert decode_base64(encoded, urlsafe=True) == raw


@pytest.mark.parametrize("raw,encoded", APPENDIX_EXAMPLES)
def test_padded_input_is_accepted(raw, encoded):
    padded = encoded + "=" * (-len(encoded) % 4)
    assert decode_base64(padded) == raw
    assert decode_base64(padded, urlsafe=True) == raw


def test_alphabets_62_and_63():
    raw = bytes([0xFB, 0xFF, 0xBF])  # 111110 111111 111110 111111 -> "+/+/" or "-_-_"
    assert encode_base64(raw) == "+/+/"
    assert encode_base64(raw, urlsafe=True) == "-_-_"
    assert decode_base64("+/+/") == raw
    assert decode_base64("-_-_", urlsafe=True) == raw
    # The alphabets are not mixed.
    with pytest.raises(Base64Error, match="alphabet"):
        decode_base64("-_-_")
    with pytest.raises(Base64Error, match="URL-safe"):
        decode_base64("+/+/", urlsafe=True)


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize(
    "garbage",
    [
        "Zm9v!",
        "Zm 9v",
        "Zm9v\n",
        " Zm9v",
        "Zm9v\t",
        "Zm.9v",
        "Zm9v%",
        "Zm9=v",
        "=Zm9v",
        "Zm9vÿ",
        "Zm9v日本",
        "Zm\x009v",
        "Zm9v\u200b",
    ],
)
def test_garbage_is_refused_not_skipped(garbage, urlsafe):
    # The stdlib's urlsafe_b64decode would silently drop these characters.
    with pytest.raises(Base64Error) as info:
        decode_base64(garbage, urlsafe=urlsafe)
    assert info.value.errcode == "M_BAD_JSON" and isinstance(info.value, BadJSON)


def test_stdlib_urlsafe_decoder_really_discards_garbage():
    # Documents why b64.py validates explicitly; if this ever fails the stdlib got stricter.
    assert base64.urlsafe_b64decode("Zm9v!!!!") == b"foo"


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize("text", ["Z", "Zm9vY", "Zm9vYmFyZ", "A=", "A==", "A==="])
def test_impossible_lengths_are_refused(text, urlsafe):
    with pytest.raises(Base64Error):
        decode_base64(text, urlsafe=urlsafe)


@pytest.mark.parametrize(
    "text", ["Zg=", "Zg===", "Zm9v=", "Zm9v==", "Zm8==", "=", "==", "====", "Zm9vYg=="[:-1] + "=="]
)
def test_wrong_padding_is_refused(text):
    with pytest.raises(Base64Error, match="padding|length|alphabet"):
        decode_base64(text)


@pytest.mark.parametrize("value", [b"Zm9v", None, 123, ["Zm9v"], bytearray(b"Zm9v")])
def test_non_string_is_refused(value):
    with pytest.raises(Base64Error, match="must be a string"):
        decode_base64(value)  # type: ignore[arg-type]


def test_nonzero_trailing_bits_are_tolerated():
    # The spec's test-vector seed ends in "1": its two unused low bits are 01.
    seed = decode_base64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
    assert len(seed) == 32
    assert encode_base64(seed) == "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0"
    assert decode_base64("Zh") == b"f"  # "Zg" with the low unused bits set


@given(st.binary(max_size=200))
def test_round_trip_both_alphabets(raw):
    text = encode_base64(raw)
    assert "=" not in text and "\n" not in text
    assert text == base64.b64encode(raw).decode().rstrip("=")
    assert decode_base64(text) == raw
    url = encode_base64(raw, urlsafe=True)
    assert url == base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert decode_base64(url, urlsafe=True) == raw


def test_encode_accepts_bytes_like():
    assert encode_base64(bytearray(b"foo")) == "Zm9v"
    assert encode_base64(memoryview(b"foo")) == "Zm9v"
