"""Enrolment of a school node into the city roster (Parta's own protocol).

Token.  The city office creates a one-time, expiring token and hands it to the school:

    parta-enrol:v1:<URL-safe unpadded Base64 of canonical JSON>
    {"id": token ID, "secret": URL-safe b64 of 32 random bytes, "exp": expiry (ms),
     "school_id": "42", "roster_key": roster_key_fingerprint(roster public key),
     "signer": the roster signer name (the gateway's server name)}

The gateway URL is not in the token (it is given on the command line).  The fingerprint lets
the node check the roster key it receives without trusting on first use.

Proof of possession, without the gateway keeping the secret.  An HMAC would need the gateway
to store the secret (or something equivalent to it).  Instead the secret deterministically
derives an ed25519 *token key* (seed = HMAC-SHA256(secret, "parta enrolment proof v1")); the
gateway stores only its public half, the *verifier* (``token_verifier``), which is one-way:
a copy of the gateway database does not let anyone enrol.  The request a node sends:

    {"token_id", "server_name", "verify_keys": {key_id: {"key": b64}}, "ts": ms,
     "proof": b64 signature by the token key over the canonical JSON of the request without
              "proof" and "signatures",
     "signatures": {server_name: {key_id: sig}}}   # Matrix JSON signing, by EVERY listed key

So the request proves possession of the token and of every server key it registers.

Key rotation uses the same shape without token: ``{"server_name", "verify_keys", "ts",
"signatures"}`` signed by at least one key the roster currently pins for the server and by
every key of the new set (``build_key_update_request`` / ``verify_key_update_request``).

Pure: no I/O; time is passed in as ``now_ms``; randomness only in ``make_token`` defaults.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TypeGuard

from .b64 import decode_base64, encode_base64
from .canonical_json import CanonicalJSONError, encode_canonical_json
from .errors import BadJSON, MatrixError
from .identifiers import is_valid_server_name
from .keys import KeyFormatError, SigningKey, VerifyKey
from .roster import Roster, RosterEntry, RosterError, roster_key_fingerprint, verify_roster
from .signing import SignatureError, sign_json, signed_bytes, verify_json, verify_raw

TOKEN_PREFIX = "parta-enrol:v1:"
SECRET_BYTES = 32
MAX_KEYS = 16  # verify_keys per request
KEY_UPDATE_MAX_SKEW_MS = 10 * 60 * 1000  # freshness window of a key update request
_PROOF_KEY_INFO = b"parta enrolment proof v1"


class EnrolmentError(MatrixError):
    """A token or enrolment/key-update request that is refused.  ``reason``:
    ``malformed`` (400 ``M_BAD_JSON``), ``expired``, ``unknown_token``, ``used``, ``proof``,
    ``signature``, ``roster_key``, ``roster``, ``stale`` (403 ``M_FORBIDDEN``)."""

    errcode = "M_FORBIDDEN"
    http_status = 403

    def __init__(self, message: str, *, reason: str, **kw: Any) -> None:
        if reason == "malformed":
            kw.setdefault("errcode", "M_BAD_JSON")
            kw.setdefault("http_status", 400)
        super().__init__(message, **kw)
        self.reason = reason


def _malformed(message: str) -> EnrolmentError:
    return EnrolmentError(message, reason="malformed")


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


# --- token -------------------------------------------------------------------------------


def _token_signing_key(secret: bytes) -> SigningKey:
    seed = hmac.new(secret, _PROOF_KEY_INFO, hashlib.sha256).digest()
    return SigningKey("enrol", seed)


def token_verifier(secret: bytes) -> str:
    """What the gateway stores for a token: the public key derived from its secret (b64)."""
    return _token_signing_key(secret).verify_key.encode()


@dataclass(frozen=True)
class EnrolmentToken:
    token_id: str
    secret: bytes
    expires_ts: int
    school_id: str
    roster_key_fingerprint: str
    signer_name: str

    def encode(self) -> str:
        body = {
            "id": self.token_id,
            "secret": encode_base64(self.secret, urlsafe=True),
            "exp": self.expires_ts,
            "school_id": self.school_id,
            "roster_key": self.roster_key_fingerprint,
            "signer": self.signer_name,
        }
        return TOKEN_PREFIX + encode_base64(encode_canonical_json(body), urlsafe=True)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:  # never print the secret
        return f"<EnrolmentToken {self.token_id} school={self.school_id} exp={self.expires_ts}>"

    @property
    def verifier(self) -> str:
        return token_verifier(self.secret)

    def is_expired(self, now_ms: int) -> bool:
        return self.expires_ts < now_ms


def make_token(
    *,
    school_id: str,
    roster_verify_key: VerifyKey,
    signer_name: str,
    expires_ts: int,
    token_id: str | None = None,
    secret: bytes | None = None,
) -> EnrolmentToken:
    """A new token (random ID and secret unless given).  ``.encode()`` gives the string."""
    if token_id is None:
        token_id = encode_base64(secrets.token_bytes(16), urlsafe=True)
    if secret is None:
        secret = secrets.token_bytes(SECRET_BYTES)
    tok = EnrolmentToken(
        token_id=token_id,
        secret=bytes(secret),
        expires_ts=expires_ts,
        school_id=str(school_id),
        roster_key_fingerprint=roster_key_fingerprint(roster_verify_key),
        signer_name=signer_name,
    )
    _check_token_fields(tok)
    return tok


def _unchecked(body: Mapping[str, Any], key: str) -> Any:
    """A token field as decoded, any JSON value or None: ``_check_token_fields`` checks the
    token built from them, so one place says what a well-formed token is."""
    return body.get(key)


def _check_token_fields(tok: EnrolmentToken) -> None:
    if (
        not isinstance(tok.token_id, str)
        or not 8 <= len(tok.token_id) <= 64
        or not tok.token_id.isascii()
        or not tok.token_id.isprintable()
    ):
        raise _malformed("Enrolment token: bad token ID")
    if len(tok.secret) != SECRET_BYTES:
        raise _malformed(f"Enrolment token: secret must be {SECRET_BYTES} bytes")
    if not _is_int(tok.expires_ts) or tok.expires_ts < 0:
        raise _malformed("Enrolment token: bad expiry")
    if not isinstance(tok.school_id, str) or not tok.school_id:
        raise _malformed("Enrolment token: bad school ID")
    if not isinstance(tok.roster_key_fingerprint, str) or len(tok.roster_key_fingerprint) != 43:
        raise _malformed("Enrolment token: bad roster key fingerprint")
    if not is_valid_server_name(tok.signer_name):
        raise _malformed("Enrolment token: bad signer (gateway server name)")


def parse_token(text: object, now_ms: int | None = None) -> EnrolmentToken:
    """Parse a token string; ``EnrolmentError`` (``malformed``/``expired``) says why not.

    With ``now_ms`` an expired token is refused (the gateway checks again on use).
    """
    if not isinstance(text, str):
        raise _malformed("Enrolment token must be a string")
    text = text.strip()
    if not text.startswith(TOKEN_PREFIX):
        raise _malformed(f"Not an enrolment token (it must start with {TOKEN_PREFIX!r})")
    try:
        raw = decode_base64(text[len(TOKEN_PREFIX) :], urlsafe=True)
        body = json.loads(raw.decode("utf-8"))
    except (BadJSON, UnicodeDecodeError, ValueError):
        raise _malformed(
            "Enrolment token is damaged (not Base64 JSON): copy it again in full"
        ) from None
    if not isinstance(body, dict):
        raise _malformed("Enrolment token is damaged (not a JSON object)")
    try:
        secret = decode_base64(body.get("secret"), urlsafe=True)
    except BadJSON:
        raise _malformed("Enrolment token: secret is not Base64") from None
    tok = EnrolmentToken(
        token_id=_unchecked(body, "id"),
        secret=secret,
        expires_ts=_unchecked(body, "exp"),
        school_id=_unchecked(body, "school_id"),
        roster_key_fingerprint=_unchecked(body, "roster_key"),
        signer_name=_unchecked(body, "signer"),
    )
    _check_token_fields(tok)
    if now_ms is not None and tok.is_expired(now_ms):
        raise EnrolmentError(
            f"Enrolment token {tok.token_id} has expired; ask the city office for a new one",
            reason="expired",
        )
    return tok


# --- enrolment request -------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    """What the gateway knows of a token (``token_lookup`` returns it, or None)."""

    token_id: str
    verifier: str  # token_verifier(secret)
    expires_ts: int
    school_id: str
    used: bool = False


@dataclass(frozen=True)
class VerifiedEnrolment:
    token: TokenRecord
    server_name: str
    verify_keys: Mapping[str, VerifyKey]


def _keys_json(keys: Iterable[SigningKey | VerifyKey]) -> dict[str, Any]:
    out = {}
    for k in keys:
        vk = k.verify_key if isinstance(k, SigningKey) else k
        out[vk.key_id] = {"key": vk.encode()}
    return out


def build_enrolment_request(
    token: EnrolmentToken, server_name: str, signing_keys: Iterable[SigningKey], now_ms: int
) -> dict[str, Any]:
    """The body a node POSTs to enrol: proof by the token, signed by each server key."""
    keys = list(signing_keys)
    if not keys:
        raise _malformed("At least one server signing key is needed to enrol")
    body = {
        "token_id": token.token_id,
        "server_name": server_name,
        "verify_keys": _keys_json(keys),
        "ts": now_ms,
    }
    proof = _token_signing_key(token.secret).sign(signed_bytes(body))
    body["proof"] = encode_base64(proof)
    for k in keys:
        sign_json(body, server_name, k)
    return body


def _parse_keys(raw: object) -> dict[str, VerifyKey]:
    if not isinstance(raw, Mapping) or not raw:
        raise _malformed("verify_keys must be a non-empty object")
    if len(raw) > MAX_KEYS:
        raise _malformed(f"verify_keys lists more than {MAX_KEYS} keys")
    out = {}
    for key_id, obj in raw.items():
        if not isinstance(obj, Mapping) or not isinstance(obj.get("key"), str):
            raise _malformed(f"verify_keys.{key_id} must be an object with a string 'key'")
        try:
            out[key_id] = VerifyKey.decode(key_id, obj["key"])
        except KeyFormatError as exc:
            raise _malformed(f"verify_keys.{key_id}: {exc.message}") from None
    return out


def _check_signed_by_all(
    body: Mapping[str, Any], server_name: str, keys: Mapping[str, VerifyKey], message: bytes
) -> None:
    for vk in keys.values():
        try:
            verify_json(body, server_name, vk, message=message)
        except SignatureError as exc:
            raise EnrolmentError(
                f"Request is not signed by the key {vk.key_id} it registers: {exc.message}",
                reason="signature",
            ) from None


def _common_shape(body: object) -> tuple[Mapping[str, Any], str, dict[str, VerifyKey], bytes]:
    """The checks both request kinds share; returns ``body`` seen as the JSON object it is."""
    if not isinstance(body, Mapping):
        raise _malformed("Request body must be a JSON object")
    server_name = body.get("server_name")
    if not is_valid_server_name(server_name):
        raise _malformed("server_name is not a valid server name")
    if not _is_int(body.get("ts")):
        raise _malformed("ts must be an integer (ms)")
    keys = _parse_keys(body.get("verify_keys"))
    try:
        message = signed_bytes(body)
    except CanonicalJSONError as exc:
        raise _malformed(f"Request is not valid canonical JSON: {exc.message}") from None
    return body, server_name, keys, message


def verify_enrolment_request(
    body: object, token_lookup: Callable[[str], TokenRecord | None], now_ms: int
) -> VerifiedEnrolment:
    """Check an enrolment request; ``EnrolmentError`` says why it is refused.

    Does not consume the token: the gateway marks it used in the same transaction.
    """
    request, server_name, keys, message = _common_shape(body)
    token_id = request.get("token_id")
    if not isinstance(token_id, str) or not token_id:
        raise _malformed("token_id must be a non-empty string")
    try:
        proof = decode_base64(request.get("proof"))
    except BadJSON:
        raise _malformed("proof must be unpadded Base64") from None
    record = token_lookup(token_id)
    if record is None:
        raise EnrolmentError("Unknown enrolment token", reason="unknown_token")
    if record.used:
        raise EnrolmentError("This enrolment token has already been used", reason="used")
    if record.expires_ts < now_ms:
        raise EnrolmentError("This enrolment token has expired", reason="expired")
    unproved = {k: v for k, v in request.items() if k not in ("proof", "signatures", "unsigned")}
    try:
        verifier = decode_base64(record.verifier)
    except BadJSON:  # pragma: no cover - the gateway stores what token_verifier returned
        raise EnrolmentError("Stored token verifier is corrupt", reason="proof") from None
    if len(proof) != 64 or not verify_raw(verifier, proof, encode_canonical_json(unproved)):
        raise EnrolmentError(
            "Enrolment proof does not match the token (wrong secret)", reason="proof"
        )
    _check_signed_by_all(request, server_name, keys, message)
    return VerifiedEnrolment(token=record, server_name=server_name, verify_keys=keys)


# --- enrolment response (gateway -> node) ------------------------------------------------


def build_enrolment_response(
    roster_doc: Mapping[str, Any], signer_name: str, roster_verify_key: VerifyKey
) -> dict[str, Any]:
    return {
        "roster": dict(roster_doc),
        "signer_name": signer_name,
        "roster_key": {"key_id": roster_verify_key.key_id, "key": roster_verify_key.encode()},
    }


def verify_enrolment_response(
    resp: object, token: EnrolmentToken, server_name: str, now_ms: int
) -> tuple[VerifyKey, Roster]:
    """Check the gateway's answer against the token: the roster key must match the token's
    fingerprint, the roster must verify with it and list ``server_name``.  Returns the key
    to pin and the roster (to ``RosterState.accept``)."""
    if not isinstance(resp, Mapping) or not isinstance(resp.get("roster_key"), Mapping):
        raise _malformed("Enrolment response has no roster_key")
    rk = resp["roster_key"]
    try:
        key = VerifyKey.decode(rk.get("key_id"), rk.get("key"))
    except KeyFormatError as exc:
        raise _malformed(f"Enrolment response roster_key: {exc.message}") from None
    if not hmac.compare_digest(roster_key_fingerprint(key), token.roster_key_fingerprint):
        raise EnrolmentError(
            "The gateway's roster key does not match the fingerprint in "
            "the enrolment token: wrong gateway, or an impostor",
            reason="roster_key",
        )
    if resp.get("signer_name") != token.signer_name:
        raise EnrolmentError(
            f"The gateway signs as {resp.get('signer_name')!r}, the token "
            f"says {token.signer_name!r}",
            reason="roster_key",
        )
    try:
        roster = verify_roster(resp.get("roster"), key, token.signer_name)
    except RosterError as exc:
        raise EnrolmentError(
            f"Roster from the gateway refused: {exc.message}", reason="roster"
        ) from None
    if roster.is_expired(now_ms):
        raise EnrolmentError("Roster from the gateway has expired", reason="stale")
    if server_name not in roster.servers:
        raise EnrolmentError(
            f"The roster from the gateway does not list {server_name}", reason="roster"
        )
    return key, roster


# --- key rotation ------------------------------------------------------------------------


def build_key_update_request(
    server_name: str,
    current_keys: Iterable[SigningKey],
    new_keys: Iterable[SigningKey],
    now_ms: int,
) -> dict[str, Any]:
    """Ask the gateway to pin ``new_keys`` (the full new set) for ``server_name``; signed
    by ``current_keys`` (at least one must be pinned in the roster) and by every new key."""
    new = list(new_keys)
    if not new:
        raise _malformed("The new key set must not be empty")
    body = {"server_name": server_name, "verify_keys": _keys_json(new), "ts": now_ms}
    signers = {k.key_id: k for k in list(current_keys) + new}
    for k in signers.values():
        sign_json(body, server_name, k)
    return body


def verify_key_update_request(
    body: object,
    entry: RosterEntry | None,
    now_ms: int,
    *,
    max_skew_ms: int = KEY_UPDATE_MAX_SKEW_MS,
) -> dict[str, VerifyKey]:
    """Check a key rotation against the server's roster ``entry``; returns the new keys."""
    request, server_name, keys, message = _common_shape(body)
    if entry is None or entry.server_name != server_name:
        raise EnrolmentError(f"{server_name} is not in the roster", reason="roster")
    if abs(request["ts"] - now_ms) > max_skew_ms:
        raise EnrolmentError(
            "Key update request is too old or from the future (check the clock)", reason="expired"
        )
    pinned_ok = False
    for vk in entry.verify_keys.values():
        try:
            verify_json(request, server_name, vk, message=message)
            pinned_ok = True
            break
        except SignatureError:
            continue
    if not pinned_ok:
        raise EnrolmentError(
            f"Key update for {server_name} is not signed by any key the roster pins for it",
            reason="signature",
        )
    _check_signed_by_all(request, server_name, keys, message)
    return keys
