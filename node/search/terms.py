"""A user's search term as words, and those words as each backend's query.

Spec: client-server API "Server Side Search"
(https://spec.matrix.org/v1.16/client-server-api/#server-side-search): ``highlights`` is
"the list of words which should be highlighted", i.e. the words as the server split them.

The term is user input handed to a full-text engine whose own query syntax (FTS5: quotes,
``NEAR(``, ``AND``/``OR``/``NOT``, ``*``, column filters; PostgreSQL ``tsquery``: ``&``,
``|``, ``!``, ``<->``, ``:*``) must never reach it: a stray ``"`` would be a syntax error
(a 500), an operator could make the engine do far more work than the words ask for.  So
the term is split here into words of letters and digits only -- what both engines'
tokenisers index (FTS5 ``unicode61`` and PostgreSQL's ``simple`` parser treat everything
else, ``_`` included, as a separator) -- and every word is written back quoted.  Words
match as prefixes from ``PREFIX_MIN_CHARS`` characters on ("hom" finds "homework"), as
users of chat search expect; shorter ones match whole words only, so a one-letter term
cannot expand to most of the index.  All words must match (AND).
"""

from __future__ import annotations

import re

from federation.errors import InvalidParam

MAX_TERM_CHARS = 1000  # characters in a search_term (longer: 400 M_INVALID_PARAM)
MAX_WORDS = 16  # words searched for; the rest of a longer term is ignored
MAX_WORD_CHARS = 100  # longer words are cut (no indexed word is that long in practice)
PREFIX_MIN_CHARS = 3

_WORD = re.compile(r"[^\W_]+")


def words(search_term: str) -> list[str]:
    """The distinct lower-cased words of ``search_term``, in order, at most ``MAX_WORDS``."""
    if len(search_term) > MAX_TERM_CHARS:
        raise InvalidParam(f"search_term is longer than {MAX_TERM_CHARS} characters")
    out: dict[str, None] = {}
    for match in _WORD.finditer(search_term):
        word = match.group(0).lower()[:MAX_WORD_CHARS]
        out[word] = None
        if len(out) == MAX_WORDS:
            break
    return list(out)


def fts5_query(ws: list[str]) -> str:
    """An FTS5 MATCH expression: every word a quoted string (a phrase of one token),
    implicitly ANDed; ``*`` after the closing quote makes it a prefix query."""
    return " ".join(
        '"' + w.replace('"', '""') + '"' + ("*" if len(w) >= PREFIX_MIN_CHARS else "") for w in ws
    )


def tsquery(ws: list[str]) -> str:
    """A PostgreSQL ``to_tsquery`` text: quoted lexemes joined with ``&``; ``:*`` makes a
    prefix match.  Words hold letters and digits only, so the quotes cannot be closed
    early; a backslash or quote could not appear anyway."""
    return " & ".join(
        "'"
        + w.replace("'", "''").replace("\\", "\\\\")
        + "'"
        + (":*" if len(w) >= PREFIX_MIN_CHARS else "")
        for w in ws
    )
