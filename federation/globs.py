"""Glob matching without regular expressions, in one pass over the text.

Two users, two dialects of the same glob:

* server ACLs (``federation/acl.py``; appendix "Glob-style matching"): ``*`` matches zero or
  more characters and ``?`` exactly one; case-insensitive, so the caller folds both sides;
* event filters (``node/filtering.py``; client-server API "Filtering",
  https://spec.matrix.org/v1.16/client-server-api/#filtering): "A '*' can be used as a
  wildcard to match any sequence of characters"; case-sensitive, ``?`` is a literal
  (``Glob(pattern, any_one=None)``).

Everything else in a pattern (``.``, ``[``, ``\\``, ``+`` ...) is literal in both.

Why not a regular expression: ``*`` translated to ``.*`` backtracks, and a pattern such as
``************!`` against a 30-character type takes minutes while holding the reactor.

The algorithm: the pattern is split at ``*`` into segments.  Every segment has a fixed length
(``?`` is exactly one character), so the first segment must be a prefix of the text, the last
one a suffix, and each middle segment can be placed at its leftmost occurrence after the
previous one: any later placement leaves less room for the rest, never more, so nothing is
ever retried.  Runs of ``*`` are empty segments and cost nothing.  Segments without ``?`` are
found with ``str.find``/``startswith``/``endswith`` (C loops); a segment with ``?`` is
compared character by character, O(len(text) * len(segment)) at worst.
"""

from __future__ import annotations

from functools import lru_cache


class Glob:
    """One compiled pattern; ``matches(text)`` is a whole-string match."""

    __slots__ = ("_starred", "_head", "_middle", "_tail", "_minimum", "_any_one", "wildcards")

    def __init__(self, pattern: str, any_one: str | None = "?") -> None:
        self._any_one = any_one
        parts = pattern.split("*")
        self._starred = len(parts) > 1
        self._head = self._segment(parts[0])
        self._tail = self._segment(parts[-1] if self._starred else "")
        self._middle = tuple(self._segment(p) for p in parts[1:-1] if p)
        self._minimum = sum(len(s) for s, _ in (self._head, self._tail, *self._middle))
        # runs of '*' (``a**b`` has one): what a match costs beyond str.find
        self.wildcards = len(self._middle) + 1 if self._starred else 0

    def _segment(self, text: str) -> tuple[str, bool]:
        return text, self._any_one is not None and self._any_one in text

    def _at(self, segment: tuple[str, bool], text: str, pos: int) -> bool:
        """Does ``segment`` match ``text`` at ``pos`` (the caller checked it fits)?"""
        seg, wild = segment
        if not wild:
            return text.startswith(seg, pos)
        any_one = self._any_one
        for i, c in enumerate(seg):
            if c != any_one and c != text[pos + i]:
                return False
        return True

    def _find(self, segment: tuple[str, bool], text: str, start: int, end: int) -> int:
        """The leftmost position in ``[start, end - len(segment)]`` where ``segment``
        matches, or -1."""
        seg, wild = segment
        if not wild:
            return text.find(seg, start, end)
        for pos in range(start, end - len(seg) + 1):
            if self._at(segment, text, pos):
                return pos
        return -1

    def matches(self, text: str) -> bool:
        head, tail = self._head, self._tail
        if not self._starred:
            return len(text) == len(head[0]) and self._at(head, text, 0)
        n = len(text)
        if n < self._minimum:  # also keeps the head and the tail apart
            return False
        end = n - len(tail[0])
        if not self._at(head, text, 0) or not self._at(tail, text, end):
            return False
        pos = len(head[0])
        for segment in self._middle:
            found = self._find(segment, text, pos, end)
            if found < 0:
                return False
            pos = found + len(segment[0])
        return True


@lru_cache(maxsize=1024)
def _compiled(pattern: str, any_one: str | None) -> Glob:
    return Glob(pattern, any_one)


def glob_matches(pattern: str, text: str, any_one: str | None = "?") -> bool:
    """``Glob(pattern, any_one).matches(text)`` with the compiled pattern cached."""
    return _compiled(pattern, any_one).matches(text)
