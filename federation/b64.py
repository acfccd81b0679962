"""Unpadded Base64 (spec appendix "Unpadded Base64"), standard and URL-safe alphabets."""

from __future__ import annotations

import base64
import binascii

from .errors import BadJSON


def encode_base64(data: bytes, *, urlsafe: bool = False) -> str:
    enc = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return enc.rstrip(b"=").decode("ascii")


def decode_base64(text: str, *, urlsafe: bool = False) -> bytes:
    """Decode unpadded (or padded) Base64; raise ``BadJSON`` on anything malformed.

    Both alphabets are accepted on input when ``urlsafe`` is false, as the spec asks
    implementations to be lenient about padding but not about garbage.
    """
    if not isinstance(text, str):
        raise BadJSON("Base64 value must be a string")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise BadJSON("Malformed unpadded Base64: impossible length")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise BadJSON(f"Malformed unpadded Base64: {exc}") from None
