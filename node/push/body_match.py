"""Glob matching of ``content.body`` at word boundaries, without regular expressions.

Client-server API "Push Rules" > conditions > ``event_match``
(https://spec.matrix.org/v1.16/client-server-api/#conditions-1): for the key
``content.body`` the pattern "must match any substring of the value of the property which
starts and ends at a word boundary", a word boundary being the start or end of the value or
any character not in ``[A-Za-z0-9_]``.  Content rules (``pattern``) use the same matching,
and so does the deprecated ``contains_display_name`` condition (with the display name as a
literal).

A pattern comes from a user, so it is never turned into a regular expression (``*`` as
``.*`` backtracks).  Like ``federation/globs.py``, the pattern is split at ``*`` into
fixed-length segments (``?`` is one character).  A match starts at a boundary where the
first segment fits, places each middle segment at its leftmost occurrence, and ends with the
last segment at a boundary.  Leftmost placements only move right as the start moves right,
so the first start where the head and the middle segments fit is the best one: no other
start can leave more room for the tail.  The cost is O(len(body) * len(pattern)) at worst.
Both sides are lower-cased by the caller ("case-insensitively").
"""

from __future__ import annotations


def _is_word(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def _fits(seg: str, text: str, pos: int) -> bool:
    if pos < 0 or pos + len(seg) > len(text):
        return False
    if "?" not in seg:
        return text.startswith(seg, pos)
    for i, c in enumerate(seg):
        if c != "?" and c != text[pos + i]:
            return False
    return True


def _find(seg: str, text: str, start: int) -> int:
    if "?" not in seg:
        return text.find(seg, start)
    for pos in range(start, len(text) - len(seg) + 1):
        if _fits(seg, text, pos):
            return pos
    return -1


class BodyGlob:
    """One compiled pattern; ``search(body)`` is the word-boundary substring match."""

    __slots__ = ("_head", "_middle", "_tail", "_starred", "_literal")

    def __init__(self, pattern: str, *, literal: bool = False) -> None:
        self._literal = literal
        self._middle: tuple[str, ...]
        if literal:
            self._head, self._middle, self._tail, self._starred = pattern, (), "", False
            return
        parts = pattern.split("*")
        self._starred = len(parts) > 1
        self._head = parts[0]
        self._tail = parts[-1] if self._starred else ""
        self._middle = tuple(p for p in parts[1:-1] if p)

    def _starts(self, body: str):
        """Start positions at a word boundary, leftmost first."""
        n = len(body)
        for i in range(n + 1):
            if i == 0 or not _is_word(body[i - 1]):
                yield i

    @staticmethod
    def _ends_ok(body: str, j: int) -> bool:
        return j == len(body) or not _is_word(body[j])

    def _seg_fits(self, seg: str, body: str, pos: int) -> bool:
        if self._literal:
            return body.startswith(seg, pos)
        return _fits(seg, body, pos)

    def search(self, body: str) -> bool:
        head = self._head
        if not self._starred:
            if self._literal or "?" not in head:
                # Each occurrence of the literal; starts and ends checked at the boundaries.
                pos = body.find(head)
                while pos >= 0:
                    if (pos == 0 or not _is_word(body[pos - 1])) and self._ends_ok(
                        body, pos + len(head)
                    ):
                        return True
                    pos = body.find(head, pos + 1)
                return False
            for i in self._starts(body):
                if _fits(head, body, i) and self._ends_ok(body, i + len(head)):
                    return True
            return False
        for i in self._starts(body):
            if not _fits(head, body, i):
                continue
            pos = i + len(head)
            for seg in self._middle:
                found = _find(seg, body, pos)
                if found < 0:
                    return False  # no later start can place it either
                pos = found + len(seg)
            tail = self._tail
            # The tail at any position from ``pos`` that ends at a boundary.
            p = pos
            while p + len(tail) <= len(body):
                found = _find(tail, body, p) if tail else p
                if found < 0:
                    return False
                if self._ends_ok(body, found + len(tail)):
                    return True
                p = found + 1
            return False
        return False
