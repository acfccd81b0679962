"""Request authentication with ``Authorization: X-Matrix`` (spec: server-server API
"Authentication" > "Request Authentication").

Signing (step 1): the JSON object ``{method, uri, origin, destination, content?}`` is signed
with the JSON signing algorithm; ``uri`` is the request target exactly as sent (path from
``/_matrix/...`` including ``?`` and the query), ``content`` is the parsed JSON body and is
present only when the request has one.  Server names are those before delegation.

Header (step 2), RFC 9110 section 11.4 ``credentials``::

    credentials  = auth-scheme 1*SP auth-param *( OWS "," OWS auth-param )
    auth-param   = token BWS "=" BWS ( token / quoted-string )
    quoted-string= DQUOTE *( qdtext / quoted-pair ) DQUOTE

Parsing here is strict about that grammar with the spec's allowances: the scheme and the
parameter names are case-insensitive, values may be quoted or not, quoted values are
unescaped (``\\x`` -> ``x``), an unquoted value may contain ``:`` (compatibility with older
servers), unknown parameters are ignored.  A duplicated parameter, an empty list element, a
missing ``origin``/``key``/``sig`` or anything else outside the grammar is malformed.
``destination`` may be absent (older servers) but, when present, must be our name.

Building follows the sender recommendations: one space after ``X-Matrix``, lower-case
names, no whitespace around commas, every value quoted.

Every failure is ``Unauthorized`` (401 ``M_UNAUTHORIZED``) with a message saying why.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from ..b64 import decode_base64, encode_base64
from ..errors import BadJSON, Unauthorized
from ..keys import SigningKey, VerifyKey
from ..signing import sign_json, signed_bytes, verify_raw
from .server_names import InvalidServerName, parse_server_name

SCHEME = "X-Matrix"

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_UNQUOTED_VALUE = _TCHAR | {":"}  # colons allowed unquoted for older servers
_OWS = " \t"


class MalformedAuthorization(Unauthorized):
    """The ``Authorization`` header is missing or not a valid X-Matrix header."""


@dataclass(frozen=True)
class XMatrixAuth:
    """The parameters of one ``X-Matrix`` header."""

    origin: str
    key: str
    sig: str
    destination: str | None = None


# --- signing -------------------------------------------------------------------------------


def request_json(
    method: str, uri: str, origin: str, destination: str, content: Any = None
) -> dict[str, Any]:
    """The object signed for a request (step 1); ``content`` omitted when None."""
    obj: dict[str, Any] = {
        "method": method,
        "uri": uri,
        "origin": origin,
        "destination": destination,
    }
    if content is not None:
        obj["content"] = content
    return obj


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_header(auth: XMatrixAuth) -> str:
    """``X-Matrix origin="..",destination="..",key="..",sig=".."``."""
    parts = [f"origin={_quote(auth.origin)}"]
    if auth.destination is not None:
        parts.append(f"destination={_quote(auth.destination)}")
    parts.append(f"key={_quote(auth.key)}")
    parts.append(f"sig={_quote(auth.sig)}")
    return f"{SCHEME} " + ",".join(parts)


def sign_request(
    method: str,
    uri: str,
    origin: str,
    destination: str,
    signing_key: SigningKey,
    content: Any = None,
) -> str:
    """The ``Authorization`` header value for a request signed by ``signing_key``."""
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, signing_key)
    sig = signed["signatures"][origin][signing_key.key_id]
    return format_header(XMatrixAuth(origin, signing_key.key_id, sig, destination))


def sign_request_body(
    method: str, uri: str, origin: str, destination: str, signing_key: SigningKey, body: bytes
) -> str:
    """``sign_request`` for a body already encoded in canonical JSON (the bytes that will be
    sent): the same header, without encoding the content a second time."""
    rest = signed_bytes(request_json(method, uri, origin, destination))
    message = b'{"content":' + body + b"," + rest[1:]
    sig = encode_base64(signing_key.sign(message))
    return format_header(XMatrixAuth(origin, signing_key.key_id, sig, destination))


# --- parsing -------------------------------------------------------------------------------


def _skip_ows(text: str, i: int) -> int:
    while i < len(text) and text[i] in _OWS:
        i += 1
    return i


def _bad(header: str, why: str) -> MalformedAuthorization:
    shown = header if len(header) <= 200 else header[:200] + "..."
    return MalformedAuthorization(f"Malformed X-Matrix Authorization header ({why}): {shown!r}")


def parse_header(header: str | bytes) -> XMatrixAuth:
    """Parse one ``Authorization`` header value; ``MalformedAuthorization`` if invalid."""
    if isinstance(header, (bytes, bytearray)):
        header = bytes(header).decode("latin-1")  # obs-text is %x80-FF octets
    if not isinstance(header, str):
        raise MalformedAuthorization("Authorization header must be a string")
    scheme_end = 0
    while scheme_end < len(header) and header[scheme_end] in _TCHAR:
        scheme_end += 1
    if header[:scheme_end].lower() != SCHEME.lower():
        raise _bad(header, "the scheme is not X-Matrix")
    i = scheme_end
    if i >= len(header) or header[i] != " ":
        raise _bad(header, "expected a space after X-Matrix")
    while i < len(header) and header[i] == " ":
        i += 1
    params: dict[str, str] = {}
    while True:
        # auth-param = token BWS "=" BWS ( token / quoted-string )
        start = i
        while i < len(header) and header[i] in _TCHAR:
            i += 1
        name = header[start:i].lower()
        if not name:
            raise _bad(header, f"expected a parameter name at position {start}")
        i = _skip_ows(header, i)
        if i >= len(header) or header[i] != "=":
            raise _bad(header, f"expected '=' after {name!r}")
        i = _skip_ows(header, i + 1)
        if i < len(header) and header[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= len(header):
                    raise _bad(header, f"unterminated quoted value of {name!r}")
                c = header[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= len(header):
                        raise _bad(header, f"dangling backslash in {name!r}")
                    c = header[i + 1]
                    i += 1
                if not (c in "\t " or 0x21 <= ord(c) <= 0x7E or 0x80 <= ord(c) <= 0xFF):
                    raise _bad(header, f"control character in the value of {name!r}")
                chars.append(c)
                i += 1
            value = "".join(chars)
        else:
            start = i
            while i < len(header) and header[i] in _UNQUOTED_VALUE:
                i += 1
            value = header[start:i]
            if not value:
                raise _bad(
                    header,
                    f"empty or invalid unquoted value of {name!r} "
                    "(quote values that are not tokens)",
                )
        if name in params:
            raise _bad(header, f"parameter {name!r} given twice")
        params[name] = value
        i = _skip_ows(header, i)
        if i >= len(header):
            break
        if header[i] != ",":
            raise _bad(header, f"unexpected {header[i]!r} at position {i}")
        i = _skip_ows(header, i + 1)
        if i >= len(header):
            raise _bad(header, "trailing comma")
    missing = [p for p in ("origin", "key", "sig") if p not in params]
    if missing:
        raise _bad(header, "missing " + ", ".join(missing))
    try:
        parse_server_name(params["origin"])
    except InvalidServerName as exc:
        raise MalformedAuthorization(f"X-Matrix origin: {exc.message}") from None
    return XMatrixAuth(params["origin"], params["key"], params["sig"], params.get("destination"))


def parse_authorization(headers: str | bytes | Sequence[str | bytes] | None) -> list[XMatrixAuth]:
    """All X-Matrix credentials among ``headers`` (one value or a list of them).

    Values with another scheme (e.g. ``Bearer``) are skipped; none at all, or X-Matrix
    headers naming different origins, is ``MalformedAuthorization``.
    """
    if headers is None:
        values: list[str | bytes] = []
    elif isinstance(headers, (str, bytes, bytearray)):
        values = [headers]
    else:
        values = list(headers)
    auths = []
    for value in values:
        text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
        if (
            isinstance(text, str)
            and text[: len(SCHEME)].lower() == SCHEME.lower()
            and text[len(SCHEME) : len(SCHEME) + 1] in (" ", "")
        ):
            auths.append(parse_header(text))
    if not auths:
        raise MalformedAuthorization(
            "Missing X-Matrix Authorization header: federation "
            "requests must be signed by the origin server"
        )
    origins = {a.origin for a in auths}
    if len(origins) > 1:
        raise MalformedAuthorization(
            "X-Matrix headers name different origins: " + ", ".join(sorted(origins))
        )
    return auths


# --- verifying -----------------------------------------------------------------------------

GetVerifyKey = Callable[[str, str], "VerifyKey | None"]
AsyncGetVerifyKey = Callable[[str, str], "Awaitable[VerifyKey | None] | VerifyKey | None"]


def _check_destination(auth: XMatrixAuth, my_server_name: str) -> None:
    if auth.destination is not None and auth.destination != my_server_name:
        raise Unauthorized(
            f"Request is for destination {auth.destination!r}, this server is {my_server_name!r}"
        )


def _verify_one(auth: XMatrixAuth, message: bytes, key: VerifyKey | None) -> None:
    if key is None:
        raise Unauthorized(f"Unknown or expired key {auth.key} for server {auth.origin}")
    try:
        sig = decode_base64(auth.sig)
    except BadJSON:
        raise MalformedAuthorization(
            f"X-Matrix sig from {auth.origin} is not unpadded Base64"
        ) from None
    if len(sig) != 64:
        raise MalformedAuthorization(
            f"X-Matrix sig from {auth.origin} is {len(sig)} bytes, expected 64"
        )
    if not verify_raw(key.public_bytes, sig, message):
        raise Unauthorized(
            f"Invalid X-Matrix signature from {auth.origin} with key "
            f"{auth.key}: the request (method, target or body) does not match"
        )


def _message(
    method: str, uri: str | bytes, auth: XMatrixAuth, my_server_name: str, body_json: Any
) -> bytes:
    if isinstance(uri, (bytes, bytearray)):
        try:
            uri = bytes(uri).decode("ascii")
        except UnicodeDecodeError:
            raise Unauthorized("Request target is not ASCII") from None
    # The destination signed is the one in the header, or ours for older servers.
    destination = auth.destination if auth.destination is not None else my_server_name
    try:
        return signed_bytes(request_json(method, uri, auth.origin, destination, body_json))
    except BadJSON as exc:  # content without a canonical form (floats...) cannot be signed
        raise Unauthorized(f"Request body cannot be verified: {exc.message}") from None


def verify_request(
    method: str,
    uri: str | bytes,
    body_json: Any,
    header: str | bytes | Sequence[str | bytes] | None,
    my_server_name: str,
    get_verify_key: GetVerifyKey,
) -> str:
    """Authenticate a federation request; return the origin server name.

    ``uri`` is the raw request target (path and query as received), ``body_json`` the parsed
    body or None when there is none, ``header`` the ``Authorization`` value(s).
    ``get_verify_key(origin, key_id)`` returns a key currently valid for that server or None.
    Every X-Matrix header present must verify.  Raises ``Unauthorized`` otherwise.
    """
    auths = parse_authorization(header)
    for auth in auths:
        _check_destination(auth, my_server_name)
    for auth in auths:
        message = _message(method, uri, auth, my_server_name, body_json)
        _verify_one(auth, message, get_verify_key(auth.origin, auth.key))
    return auths[0].origin


def _spliced_message(
    method: str, uri: str | bytes, auth: XMatrixAuth, my_server_name: str, raw_body: bytes
) -> bytes | None:
    """The signed object's bytes with the body *as received* in the ``content`` place
    (``content`` sorts first), or None when the body is not a JSON object.  Equal to the
    canonical form whenever the sender sent its body in canonical JSON, as servers do."""
    body = raw_body.strip()
    if not body.startswith(b"{"):
        return None
    rest = _message(method, uri, auth, my_server_name, None)
    return b'{"content":' + body + b"," + rest[1:]


def _signature_holds(auth: XMatrixAuth, message: bytes, key: VerifyKey) -> bool:
    try:
        sig = decode_base64(auth.sig)
    except BadJSON:
        return False
    return len(sig) == 64 and verify_raw(key.public_bytes, sig, message)


async def verify_request_async(
    method: str,
    uri: str | bytes,
    body_json: Any,
    header: str | bytes | Sequence[str | bytes] | None,
    my_server_name: str,
    get_verify_key: AsyncGetVerifyKey,
    raw_body: bytes | None = None,
) -> str:
    """``verify_request`` with a key lookup that may fetch (``KeyRing.get_verify_key``).

    A lookup that raises ``Unauthorized``/``NotFound``-like ``MatrixError`` is reported as
    401 ``M_UNAUTHORIZED``; the header and destination are checked before any fetch, so an
    unsigned or misdirected request never causes key traffic.

    ``raw_body``: the request body as received (``body_json`` is its parse).  The signature
    is first checked against the signed object with these bytes spliced in, which saves
    re-encoding a large body (a 50-PDU transaction) in canonical JSON: a server sends the
    bytes it signed.  Only if that fails is the canonical form built and checked, so a
    body sent in another encoding still verifies exactly as the spec describes.  (A
    signature over the received bytes proves the origin signed this very content too.)
    """
    from ..errors import MatrixError

    auths = parse_authorization(header)
    for auth in auths:
        _check_destination(auth, my_server_name)
    for auth in auths:
        fast = None
        if raw_body is not None and body_json is not None:
            fast = _spliced_message(method, uri, auth, my_server_name, raw_body)
        message = _message(method, uri, auth, my_server_name, body_json) if fast is None else None
        try:
            key = get_verify_key(auth.origin, auth.key)
            if inspect.isawaitable(key):
                key = await key
        except MatrixError as exc:
            raise Unauthorized(
                f"Cannot get key {auth.key} of {auth.origin}: {exc.message}"
            ) from None
        if fast is not None and key is not None and _signature_holds(auth, fast, key):
            continue
        if message is None:
            message = _message(method, uri, auth, my_server_name, body_json)
        _verify_one(auth, message, key)
    return auths[0].origin


__all__ = [
    "SCHEME",
    "XMatrixAuth",
    "MalformedAuthorization",
    "request_json",
    "format_header",
    "sign_request",
    "sign_request_body",
    "parse_header",
    "parse_authorization",
    "verify_request",
    "verify_request_async",
]
