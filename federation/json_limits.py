"""How deep a JSON document may nest, and the cheap scan that enforces it before parsing.

The Matrix spec sets no nesting limit, but every JSON encoder has one: orjson, which renders
every response of the node, refuses values nested 255 containers deep.  A value the node
accepted and stored (an event's content, account data, a filter) is later sent inside
envelopes - a ``/sync`` response puts event content about ten levels deep - so one over-deep
document, accepted once, would make every later response that carries it fail.  The node
therefore refuses over-deep JSON where it enters, with one limit derived from one constant:

* ``MAX_JSON_DEPTH`` (100): the deepest document a client may send, and so the deepest value
  a user can make the node store.  No real client or event comes near it.
* ``MAX_SERVER_JSON_DEPTH`` (110): server-server documents (``/send`` transactions with their
  PDUs and EDUs, federation responses) and everything the node encodes as canonical JSON.
  A stored value travels inside a federation envelope (a PDU in a transaction is three
  levels below the top, an event's content four, a ``send_join`` v1 answer adds one more), so
  the server limit is the client limit plus ``SERVER_ENVELOPE_DEPTH`` levels: whatever a Parta
  node accepted from its users, its peers accept from it.
* The deepest server document (110) inside the deepest client response envelope still
  stays far below orjson's limit (``ORJSON_MAX_DEPTH``); a test checks that margin.

Depth counts containers: ``1`` and ``"x"`` have depth 0, ``[]`` and ``{}`` depth 1,
``{"a": [1]}`` depth 2.

``nesting_exceeds`` decides on the raw body, before the decoder runs, with a handful of
C-level passes (``bytes.translate``/``replace``/``count``) instead of a Python walk over the
parsed objects; a body too shallow to matter (the typical message) costs one ``translate``.
"""

from __future__ import annotations

import re
from itertools import accumulate, repeat
from operator import sub

MAX_JSON_DEPTH = 100
SERVER_ENVELOPE_DEPTH = 10
MAX_SERVER_JSON_DEPTH = MAX_JSON_DEPTH + SERVER_ENVELOPE_DEPTH
ORJSON_MAX_DEPTH = 254  # orjson.dumps refuses 255 nested containers ("Recursion limit reached")

# The bytes that shape a document: strings (quotes, and backslashes for escaped quotes) and
# containers.  Braces are folded into brackets: depth does not care which kind opens.
_NON_STRUCTURAL = bytes(b for b in range(256) if b not in b'"\\[]{}')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
# An escaped backslash or an escaped quote: the only escapes that can hide a string's end.
_QUOTE_ESCAPES = re.compile(rb'\\[\\"]')
# "[" -> +1, "]" -> -1 once 1 is subtracted from every byte (for the running depth).
_STEP_PLUS_ONE = bytes.maketrans(b"[]", b"\x02\x00")
_CHEAP_PASSES = 8


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Does the JSON text ``body`` nest containers more than ``limit`` deep?

    Brackets inside strings do not count.  Exact for valid JSON; for invalid JSON the answer
    does not matter (the decoder refuses the text anyway) but it never raises.  Cost: one
    ``translate`` of the body; then, only when the body holds more than ``limit`` brackets,
    a few passes over its skeleton (quotes and brackets, a small fraction of a typical
    body); for documents nested more than eight levels, one running sum over the skeleton.
    """
    if len(body) <= 2 * limit:  # n levels need n openers and n closers
        return False
    skeleton = body.translate(_BRACES_AS_BRACKETS, _NON_STRUCTURAL)
    if skeleton.count(b"[") <= limit:
        return False
    if b"\\" in skeleton:
        # Only a backslash right before a quote or a backslash can hide a string's end, and
        # such a pair in the body is a pair in the skeleton too.  If there is one, drop the
        # escaped backslashes and quotes from the body (leftmost pairs: exactly how the JSON
        # grammar reads a run of backslashes); any other escape is harmless.
        if b'\\"' in skeleton or b"\\\\" in skeleton:
            skeleton = _QUOTE_ESCAPES.sub(b"", body).translate(_BRACES_AS_BRACKETS, _NON_STRUCTURAL)
        skeleton = skeleton.replace(b"\\", b"")
    # Two adjacent quotes end one string and start the next, or enclose a string without
    # brackets: dropping them never moves a bracket in or out of a string.
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:  # some string holds a bracket: keep what lies between strings
        skeleton = b"".join(skeleton.split(b'"')[::2])
    # Each pass removes every innermost pair, lowering the nesting by exactly one; the
    # openers left bound what remains.
    removed = 0
    while skeleton.count(b"[") > limit - removed:
        if removed > limit:
            return True
        if removed == _CHEAP_PASSES:
            steps = map(sub, skeleton.translate(_STEP_PLUS_ONE), repeat(1))
            deepest: int = max(accumulate(steps))
            return deepest > limit - removed
        shorter = skeleton.replace(b"[]", b"")
        if len(shorter) == len(skeleton):
            return False  # no pair left: unbalanced, the decoder reports it
        skeleton = shorter
        removed += 1
    return False
