"""Canonical JSON and strict JSON parsing (spec appendix "Signing JSON" > "Canonical JSON").

Canonical JSON is "the shortest UTF-8 JSON encoding with dictionary keys lexicographically
sorted by Unicode codepoint".  Numbers must be integers in ``[-(2**53)+1, (2**53)-1]``
without exponent or fraction, and ``-0`` never appears (a Python ``int`` has no negative
zero).  Floats are not permitted.  Strings carry only the escapes the appendix grammar
allows: ``\\b \\t \\n \\f \\r \\" \\\\`` and ``\\u00XX`` (lower-case hex) for the remaining
ASCII control characters; everything else, including U+007F, U+2028/U+2029 and characters
outside the BMP, is written as raw UTF-8.

Public API:

* ``encode_canonical_json(value) -> bytes`` - raises ``CanonicalJSONError`` (``M_BAD_JSON``)
  naming the JSON path of the first offending value.
* ``check_canonical(value)`` - the same checks when only validity matters (PDUs read from
  the network); the encoder also refuses lone surrogates, which have no UTF-8 form.
* ``parse_json(body, max_depth=MAX_JSON_DEPTH) -> Any`` - strict parser for request bodies
  (see its docstring).

One nesting limit holds for what is parsed and what is encoded (``federation/json_limits.py``):
the parser refuses documents deeper than its ``max_depth`` (clients ``MAX_JSON_DEPTH``, servers
``MAX_SERVER_JSON_DEPTH``) and the encoder refuses values deeper than ``MAX_SERVER_JSON_DEPTH``,
so nothing the node accepted fails to encode later, and nothing it signs is refused by a peer.

Two encoders produce identical bytes (a property test in
``tests/unit/federation/test_canonical_json.py`` compares both with the reference
``canonicaljson`` library): orjson with ``OPT_SORT_KEYS`` (fast path) and the stdlib ``json``
module (fallback for values orjson refuses, e.g. ``str`` subclasses as keys, or when orjson
is absent).  Both run after a validation walk that refuses floats, out-of-range integers,
over-deep nesting and non-JSON types; non-string keys are refused by orjson itself or by a
key walk before the stdlib encoder (which would silently turn ``1`` into ``"1"``).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import BadJSON, NotJSON
from .json_limits import MAX_JSON_DEPTH, MAX_SERVER_JSON_DEPTH, nesting_exceeds

try:  # optional fast path
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]  # the fallback tests for None

MAX_SAFE_INT = 2**53 - 1
MIN_SAFE_INT = -(2**53) + 1

_SURROGATE = re.compile("[\ud800-\udfff]")
# Does the raw body contain a \u escape of a UTF-16 surrogate (``\ud800``-``\udfff``)?
# Only such escapes can put a surrogate into a parsed string (raw surrogate bytes are not
# valid UTF-8), so bodies without one skip the post-parse surrogate walk.  An escaped
# backslash followed by "ud8.." matches too; that only costs the walk, never correctness.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class CanonicalJSONError(BadJSON):
    """A value that has no canonical JSON form.  ``path`` names where (``$.content.n``)."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path


# --- validation --------------------------------------------------------------------------

_OK = 0  # only exact JSON types (dict/list/tuple/str/int/bool/None), numbers valid
_EXOTIC = 1  # valid values, but subclasses of those types: use the stdlib encoder
_BAD = 2  # something invalid: run _locate_problem for a precise message

_SCALARS = frozenset((str, bool, type(None)))
_INT_ONLY = frozenset((int,))
_STR_ONLY = {str}
_CONTAINERS = (dict, list, tuple)


def _scan(value: Any) -> int:
    """Fast validation walk over the *values* (iterative: no recursion limit).

    Object keys and strings are not examined here: orjson refuses non-``str`` keys and lone
    surrogates itself, and the stdlib fallback checks keys before encoding.  Large
    containers are first checked with C-level ``set(map(type, ...))``/``min``/``max``.
    The walk goes one nesting level at a time, which gives the depth limit for free.
    """
    result = _OK
    level = [value]
    depth = 0  # nesting of the containers in ``level``
    scalars = _SCALARS
    while level:
        depth += 1
        if depth > MAX_SERVER_JSON_DEPTH and any(isinstance(v, _CONTAINERS) for v in level):
            return _BAD
        below: list[Any] = []
        push = below.append
        for v in level:
            t = type(v)
            if t is dict:
                items = v.values()
            elif t is list or t is tuple:
                items = v
            elif t in scalars:
                continue
            elif t is int:
                if not MIN_SAFE_INT <= v <= MAX_SAFE_INT:
                    return _BAD
                continue
            # Subclasses of the JSON types (OrderedDict, IntEnum, str subclasses, ...).
            elif isinstance(v, float):
                return _BAD
            elif isinstance(v, int):  # int subclass such as IntEnum (bool cannot be subclassed)
                if not MIN_SAFE_INT <= v <= MAX_SAFE_INT:
                    return _BAD
                result = _EXOTIC
                continue
            elif isinstance(v, str):
                result = _EXOTIC
                continue
            elif isinstance(v, dict):
                result = _EXOTIC
                items = list(v.values())
            elif isinstance(v, (list, tuple)):
                result = _EXOTIC
                items = v
            else:
                return _BAD  # float, bytes, set, Decimal, arbitrary objects ...
            if len(items) > 16:
                types = set(map(type, items))
                if types <= scalars:
                    continue
                if types == _INT_ONLY:
                    if min(items) < MIN_SAFE_INT or max(items) > MAX_SAFE_INT:
                        return _BAD
                    continue
            for x in items:
                tx = type(x)
                if tx is str:
                    continue
                if tx is int:  # exact int: True/False have type bool and never get here
                    if not MIN_SAFE_INT <= x <= MAX_SAFE_INT:
                        return _BAD
                elif tx is not bool and x is not None:
                    push(x)  # containers, floats, subclasses: decided one level down
        level = below
    return result


def _path_join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _SIMPLE_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _locate_problem(value: Any, check_strings: bool = True) -> CanonicalJSONError | None:
    """Slow walk (only run after a failure) that names the first offending value."""
    stack: list[tuple[Any, str, int]] = [(value, "$", 1)]
    while stack:
        v, path, depth = stack.pop()
        if v is None or isinstance(v, bool):
            continue
        if depth > MAX_SERVER_JSON_DEPTH and isinstance(v, _CONTAINERS):
            return CanonicalJSONError(
                f"JSON value is nested too deeply at {path} (more than "
                f"{MAX_SERVER_JSON_DEPTH} levels)",
                path,
            )
        if isinstance(v, str):
            if check_strings and _SURROGATE.search(v):
                return CanonicalJSONError(
                    f"String at {path} contains a lone UTF-16 surrogate; it is not valid "
                    "Unicode and has no UTF-8 encoding",
                    path,
                )
            continue
        if isinstance(v, int):
            if not MIN_SAFE_INT <= v <= MAX_SAFE_INT:
                return CanonicalJSONError(
                    f"Integer at {path} is out of the canonical JSON range "
                    f"[-(2**53)+1, (2**53)-1]: {v}",
                    path,
                )
            continue
        if isinstance(v, float):
            return CanonicalJSONError(
                f"Float at {path} ({v!r}) is not allowed in canonical JSON; use an integer", path
            )
        if isinstance(v, dict):
            children = []
            for k, x in v.items():
                if not isinstance(k, str):
                    return CanonicalJSONError(
                        f"Object key {k!r} at {path} is a {type(k).__name__}; keys must be strings",
                        path,
                    )
                kpath = _path_join(path, k)
                if check_strings and _SURROGATE.search(k):
                    return CanonicalJSONError(
                        f"Object key at {kpath} contains a lone UTF-16 surrogate", kpath
                    )
                children.append((x, kpath, depth + 1))
            stack.extend(reversed(children))  # report in document order
            continue
        if isinstance(v, (list, tuple)):
            stack.extend(reversed([(x, _path_join(path, i), depth + 1) for i, x in enumerate(v)]))
            continue
        return CanonicalJSONError(
            f"Value at {path} of type {type(v).__name__} cannot be represented in JSON", path
        )
    return None


def check_canonical(value: Any) -> None:
    """Raise ``CanonicalJSONError`` unless ``value`` has a canonical JSON encoding.

    Refuses floats, integers outside ``[-(2**53)+1, (2**53)-1]``, non-string object keys,
    strings with lone surrogates, nesting deeper than ``MAX_SERVER_JSON_DEPTH`` and non-JSON
    Python types.
    """
    encode_canonical_json(value)


# --- encoding ----------------------------------------------------------------------------

_stdlib_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


def _keys_are_strings(value: Any) -> bool:
    """Are all object keys strings?  (The stdlib encoder would turn 1 into "1".)"""
    stack = [value]
    push = stack.append
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if not set(map(type, v)) <= _STR_ONLY and not all(isinstance(k, str) for k in v):
                return False
            v = v.values()
        elif not isinstance(v, (list, tuple)):
            continue
        for x in v:
            if type(x) not in _SCALARS:
                push(x)
    return True


def _encode_checked_stdlib(value: Any) -> bytes:
    """Key validation, then the stdlib encoder (values were checked by ``_scan``)."""
    if not _keys_are_strings(value):
        raise _locate_problem(value, check_strings=False) or CanonicalJSONError(
            "Object keys must be strings"
        )
    try:
        text = _stdlib_encoder.encode(value)
    except RecursionError:
        raise CanonicalJSONError("JSON value is nested too deeply to encode") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _locate_problem(value) or CanonicalJSONError(
            "String contains a lone surrogate; not valid Unicode"
        ) from None


if _orjson is not None:
    _ORJSON_DUMPS = _orjson.dumps
    _ORJSON_ERROR = _orjson.JSONEncodeError
    # STRICT_INTEGER: orjson itself refuses integers outside +-(2**53 - 1) (defence in depth).
    _ORJSON_SORT = _orjson.OPT_SORT_KEYS | _orjson.OPT_STRICT_INTEGER
else:  # pragma: no cover
    _ORJSON_DUMPS = None


def encode_canonical_json(value: Any) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes.

    Raises ``CanonicalJSONError`` (``M_BAD_JSON``) naming the path of the offending value.
    """
    state = _scan(value)
    if state == _OK and _ORJSON_DUMPS is not None:
        try:
            return _ORJSON_DUMPS(value, option=_ORJSON_SORT)
        except _ORJSON_ERROR:
            # Non-str keys, str-subclass keys, lone surrogates: the checked stdlib path
            # encodes the value or names the problem.
            pass
    elif state == _BAD:
        raise _locate_problem(value, check_strings=False) or CanonicalJSONError(
            "Value has no canonical JSON form"
        )
    return _encode_checked_stdlib(value)


def _encode_stdlib_only(value: Any) -> bytes:
    """The stdlib path alone (tests compare it with the orjson path and the reference)."""
    if _scan(value) == _BAD:
        raise _locate_problem(value, check_strings=False) or CanonicalJSONError(
            "Value has no canonical JSON form"
        )
    return _encode_checked_stdlib(value)


# --- parsing -----------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise BadJSON(f"JSON constant {name} is not allowed")


def _parse_number(text: str) -> int | float:
    """Numbers with a fraction or exponent.

    JSON has a single number type, so a number whose value is an integer is an integer
    however it is written: the appendix's example turns ``-0`` into ``0`` and ``1e10`` into
    ``10000000000``.  Integral values inside the canonical range become ``int``; others stay
    ``float`` (``check_canonical`` refuses them where canonical JSON is required).
    """
    try:
        d = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the scanner only passes valid numbers
        raise NotJSON(f"Invalid number {text!r}") from None
    if d == d.to_integral_value() and -MAX_SAFE_INT <= d <= MAX_SAFE_INT:
        return int(d)
    f = float(text)
    if f in (float("inf"), float("-inf")):
        raise BadJSON(f"Number {text[:40]} is too large")
    return f


def _parse_int(text: str) -> int:
    """Integers: only the canonical JSON range, for client and server JSON alike.

    Events must be canonical JSON to be hashed and signed, and an integer beyond 64 bits
    could not even be stored as account data (orjson refuses it); one rule at the parser
    means such a number is a 400 where it arrives rather than a failure later.  Called only
    for integer literals (a few per event), so the hook costs little.
    """
    if len(text) < 16:  # at most 15 digits (or a sign and 14): always inside the range
        return int(text)
    if len(text) <= 17:
        value = int(text)
        if MIN_SAFE_INT <= value <= MAX_SAFE_INT:
            return value
    raise BadJSON(
        f"Integer {text[:24]}{'...' if len(text) > 24 else ''} is out of the "
        "canonical JSON range [-(2**53)+1, (2**53)-1]"
    )


_decoder = json.JSONDecoder(
    parse_float=_parse_number, parse_int=_parse_int, parse_constant=_refuse_constant
)


def _contains_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return True
        elif isinstance(v, dict):
            for k, x in v.items():
                if _SURROGATE.search(k):
                    return True
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
    return False


def parse_json(
    body: bytes | bytearray | memoryview | str, *, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """Parse a JSON request/response body strictly.

    * The body must be UTF-8 (no BOM, no UTF-16/32 sniffing); otherwise ``NotJSON``
      (``M_NOT_JSON``), as is any syntax error or trailing garbage.
    * ``NaN``, ``Infinity`` and ``-Infinity`` are refused with ``BadJSON`` (``M_BAD_JSON``),
      as are numbers too large for a double and strings containing lone surrogates
      (``"\\ud800"``), which are not Unicode and could never be encoded back to UTF-8.
    * Floats are allowed (client JSON may carry them); integral values written with a
      fraction or exponent (``1e10``, ``2.0``, ``-0.0``) become ``int``.  Use
      ``check_canonical`` where canonical JSON is required (PDUs).
    * Duplicate object keys are accepted and the last one wins (RFC 8259 leaves this to the
      implementation; it matches what other homeservers do).
    * Integers outside the canonical JSON range ``[-(2**53)+1, (2**53)-1]`` are refused
      with ``BadJSON``: one rule for every JSON input, client or server.
    * Nesting deeper than ``max_depth`` containers is refused with ``BadJSON`` before the
      decoder runs (``federation.json_limits``): client bodies get ``MAX_JSON_DEPTH``,
      server-server documents ``MAX_SERVER_JSON_DEPTH``.
    """
    if isinstance(body, str):
        text = body
        if not text.isascii() and _SURROGATE.search(text):
            raise BadJSON("JSON text contains a lone UTF-16 surrogate")
        data = text.encode("utf-8")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotJSON(f"Body is not valid UTF-8 (byte {exc.start})") from None
    else:
        raise TypeError(f"parse_json expects bytes or str, not {type(body).__name__}")
    if nesting_exceeds(data, max_depth):
        raise BadJSON(f"JSON is nested more than {max_depth} levels deep")
    if text.startswith("\ufeff"):
        raise NotJSON("Body starts with a byte order mark; send plain UTF-8 JSON")
    try:
        value = _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise NotJSON(f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # pragma: no cover - the depth scan refuses such text first
        raise BadJSON("JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. integer literal longer than int_max_str_digits
        raise BadJSON(f"Unacceptable JSON value: {exc}") from None
    if _SURROGATE_ESCAPE.search(text) and _contains_surrogate(value):
        raise BadJSON("JSON string contains a lone UTF-16 surrogate escape")
    return value
