"""Unpadded Base64 (spec appendix "Unpadded Base64" and "URL-safe unpadded Base64").

Encoding never pads.  Decoding follows the appendix's "SHOULD accept input with or without
padding characters", but is otherwise strict, because the stdlib is not: by default
``base64.b64decode``/``urlsafe_b64decode`` silently *discard* characters outside the alphabet.
Here every character must belong to the chosen alphabet (standard ``+/`` or URL-safe ``-_``;
the two are not mixed), padding may only complete the final quantum, and a length that no
byte string encodes to (``4n + 1`` characters) is refused.  Non-zero unused bits in the last
character are tolerated: the spec's own test-vector seed
(``YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1``) has them.
"""

from __future__ import annotations

import binascii
import re

from .errors import BadJSON

_STANDARD = re.compile(r"[A-Za-z0-9+/]*\Z")
_URLSAFE = re.compile(r"[A-Za-z0-9\-_]*\Z")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class Base64Error(BadJSON):
    """A value that is not valid (unpadded) Base64 (``M_BAD_JSON``)."""


def encode_base64(data: bytes, *, urlsafe: bool = False) -> str:
    """Unpadded Base64 of ``data`` (standard alphabet unless ``urlsafe``)."""
    text = binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=")
    if urlsafe:
        text = text.replace("+", "-").replace("/", "_")
    return text


def decode_base64(text: object, *, urlsafe: bool = False) -> bytes:
    """Decode unpadded (or correctly padded) Base64; raise ``Base64Error`` otherwise."""
    if not isinstance(text, str):
        raise Base64Error(f"Base64 value must be a string, not {type(text).__name__}")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if padding and (padding > 2 or len(text) % 4):
        raise Base64Error("Malformed Base64: wrong padding")
    if len(body) % 4 == 1:
        raise Base64Error("Malformed Base64: impossible length")
    if not (_URLSAFE if urlsafe else _STANDARD).match(body):
        alphabet = "URL-safe " if urlsafe else ""
        raise Base64Error(f"Malformed Base64: character outside the {alphabet}Base64 alphabet")
    if urlsafe:
        body = body.translate(_URLSAFE_TO_STANDARD)
    try:
        return binascii.a2b_base64(body + "=" * (-len(body) % 4))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise Base64Error(f"Malformed Base64: {exc}") from None
