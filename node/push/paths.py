"""Dot-separated property paths (appendix "Dot-separated property paths",
https://spec.matrix.org/v1.16/appendices/#dot-separated-property-paths).

A push rule names the event property it looks at as ``content.m\\.relates_to.rel_type``:
``.`` separates names, ``\\.`` is a literal dot and ``\\\\`` a literal backslash; any other
escape is kept as it is (``\\x`` is a backslash then ``x``).  Paths are parsed once, when a
rule is compiled, into a tuple of names; looking one up is a walk over nested dicts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

MISSING = object()  # the property is absent (distinct from a JSON null)


@lru_cache(maxsize=4096)
def parse_path(key: str) -> tuple[str, ...]:
    """``content.m\\.mentions.user_ids`` -> ``("content", "m.mentions", "user_ids")``."""
    parts: list[str] = []
    current: list[str] = []
    i, n = 0, len(key)
    while i < n:
        c = key[i]
        if c == "\\" and i + 1 < n and key[i + 1] in ".\\":
            current.append(key[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


def lookup(event: Mapping[str, object], path: tuple[str, ...]) -> object:
    """The value at ``path`` in ``event``, or ``MISSING``."""
    value: object = event
    for name in path:
        if not isinstance(value, Mapping):
            return MISSING
        value = value.get(name, MISSING)
        if value is MISSING:
            return MISSING
    return value
