"""Canonical JSON (spec appendix "Canonical JSON").

Keys sorted by Unicode code point, no insignificant whitespace, UTF-8 output with only the
escapes JSON requires, integers in [-(2**53)+1, 2**53-1]; floats and out-of-range integers
are refused.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import BadJSON

MAX_SAFE_INT = 2**53 - 1
MIN_SAFE_INT = -(2**53) + 1


class CanonicalJSONError(BadJSON):
    """A value that has no canonical JSON form."""


def _check(value: Any, path: str = "$") -> None:
    # Iterative-enough recursive walk; depth is bounded by the body size limits upstream.
    if value is None or value is True or value is False or isinstance(value, str):
        return
    if isinstance(value, int):
        if not MIN_SAFE_INT <= value <= MAX_SAFE_INT:
            raise CanonicalJSONError(f"Integer out of range at {path}: {value}")
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"Floats are not allowed in canonical JSON (at {path})")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CanonicalJSONError(f"Object keys must be strings (at {path})")
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise CanonicalJSONError(f"Value of type {type(value).__name__} is not JSON (at {path})")


def encode_canonical_json(value: Any) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes."""
    _check(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError("String contains a lone surrogate; not valid Unicode") from None
