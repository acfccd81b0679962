"""Pure checks of the key objects clients publish (client-server API "End-to-End
Encryption": https://spec.matrix.org/v1.16/client-server-api/#end-to-end-encryption).

No I/O: each function takes a decoded JSON value and either returns the checked object or
raises a ``MatrixError`` (400), so the API handlers never store something a receiving
client could not use -- a device key object whose self-signature does not verify would
let a pupil publish keys in another device's name.

Limits (Parta's, the spec sets none; listed in docs/security.md):
``MAX_KEY_ID_BYTES`` for algorithm and key IDs, ``MAX_KEYS_PER_UPLOAD`` one-time plus
fallback keys per ``/keys/upload`` request, ``MAX_KEY_OBJECT_BYTES`` per key object.
"""

from __future__ import annotations

from typing import Any

import orjson

from federation.b64 import decode_base64
from federation.errors import BadJSON, InvalidParam, MatrixError
from federation.keys import VerifyKey
from federation.signing import SignatureError, signed_bytes, verify_raw

MAX_KEY_ID_BYTES = 255
MAX_KEYS_PER_UPLOAD = 100
MAX_KEY_OBJECT_BYTES = 4096
MAX_ALGORITHMS = 32
MAX_KEYS_IN_OBJECT = 32

CROSS_SIGNING_TYPES = ("master", "self_signing", "user_signing")


class TooLarge(MatrixError):
    errcode = "M_TOO_LARGE"
    http_status = 413


class InvalidSignature(MatrixError):
    """A signature that is missing or does not verify (errcode used by the spec's
    ``/keys/signatures/upload`` failures)."""

    errcode = "M_INVALID_SIGNATURE"


def _short_id(value: Any, what: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or "\x00" in value
        or len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_ID_BYTES
    ):
        raise BadJSON(f"{what} must be a non-empty string of at most {MAX_KEY_ID_BYTES} bytes")
    return value


def encode(obj: Any) -> str:
    """JSON text of a key object as stored (sorted keys: equal objects, equal text)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def _size_checked(obj: Any, what: str) -> dict:
    if not isinstance(obj, dict):
        raise BadJSON(f"{what} must be an object")
    if len(encode(obj)) > MAX_KEY_OBJECT_BYTES:
        raise TooLarge(f"{what} is larger than {MAX_KEY_OBJECT_BYTES} bytes")
    return obj


def ed25519_key(obj: dict, key_id: str) -> VerifyKey | None:
    """The ed25519 public key ``key_id`` listed in ``obj["keys"]``, if it decodes."""
    keys = obj.get("keys")
    if not isinstance(keys, dict):
        return None
    b64 = keys.get(key_id)
    if not isinstance(b64, str):
        return None
    try:
        raw = decode_base64(b64)
    except BadJSON:
        return None
    if len(raw) != 32:
        return None
    return VerifyKey(key_id, raw)


def signature_valid(obj: dict, user_id: str, key: VerifyKey) -> bool:
    """Does ``obj`` carry ``user_id``'s valid signature with ``key`` ("Signing JSON")?"""
    sigs = obj.get("signatures")
    by_user = sigs.get(user_id) if isinstance(sigs, dict) else None
    b64 = by_user.get(key.key_id) if isinstance(by_user, dict) else None
    if not isinstance(b64, str):
        return False
    try:
        raw = decode_base64(b64)
        message = signed_bytes(obj)
    except (BadJSON, SignatureError):
        return False
    return len(raw) == 64 and verify_raw(key.public_bytes, raw, message)


def device_keys(obj: Any, user_id: str, device_id: str) -> dict:
    """``device_keys`` of ``/keys/upload`` ("Uploading keys"): the required fields, the
    token's user and device, and a valid self-signature by ``ed25519:<device_id>``."""
    obj = _size_checked(obj, "device_keys")
    if obj.get("user_id") != user_id:
        raise InvalidParam("device_keys.user_id does not match the access token's user")
    if obj.get("device_id") != device_id:
        raise InvalidParam("device_keys.device_id does not match the access token's device")
    algorithms = obj.get("algorithms")
    if not isinstance(algorithms, list) or len(algorithms) > MAX_ALGORITHMS:
        raise BadJSON(f"device_keys.algorithms must be a list of at most {MAX_ALGORITHMS}")
    for alg in algorithms:
        _short_id(alg, "an algorithm")
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) > MAX_KEYS_IN_OBJECT:
        raise BadJSON("device_keys.keys must be an object of key ID -> key")
    for key_id, value in keys.items():
        _short_id(key_id, "a key ID")
        if not isinstance(value, str):
            raise BadJSON(f"device_keys.keys[{key_id!r}] must be a string")
    if not isinstance(obj.get("signatures"), dict):
        raise BadJSON("device_keys.signatures must be an object")
    signing_key = ed25519_key(obj, f"ed25519:{device_id}")
    if signing_key is None:
        raise BadJSON(f"device_keys.keys needs a valid 'ed25519:{device_id}' key")
    if not signature_valid(obj, user_id, signing_key):
        raise InvalidSignature("device_keys is not signed by the device's ed25519 key")
    return obj


def one_time_keys(value: Any, what: str) -> list[tuple[str, str, str]]:
    """``one_time_keys`` / ``fallback_keys``: ``{"<algorithm>:<key_id>": key}`` where a key
    is a string (``curve25519``) or a signed object (``signed_curve25519``).  Returns
    (algorithm, key_id, key JSON text); the signatures are the device's business (the
    claiming client verifies them with the device key it queried)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise BadJSON(f"{what} must be an object")
    out = []
    for name, key in value.items():
        _short_id(name, f"a key name in {what}")
        algorithm, sep, key_id = name.partition(":")
        if not sep or not algorithm or not key_id:
            raise BadJSON(f"{what}: {name[:80]!r} is not '<algorithm>:<key_id>'")
        if isinstance(key, dict):
            _size_checked(key, f"{what}[{name[:80]!r}]")
            if not isinstance(key.get("key"), str):
                raise BadJSON(f"{what}[{name[:80]!r}].key must be a string")
        elif not isinstance(key, str) or len(key) > MAX_KEY_OBJECT_BYTES:
            raise BadJSON(f"{what}[{name[:80]!r}] must be a key string or a signed key object")
        out.append((algorithm, key_id, encode(key)))
    return out


def cross_signing_key(obj: Any, user_id: str, usage: str) -> tuple[dict, VerifyKey]:
    """A ``CrossSigningKey`` ("Cross-signing"): the user, ``usage`` listing ``usage``, and
    exactly one ed25519 key whose key ID names its own public key.  Returns the object and
    its public key."""
    obj = _size_checked(obj, f"{usage} key")
    if obj.get("user_id") != user_id:
        raise InvalidParam(f"The {usage} key's user_id must be {user_id}")
    uses = obj.get("usage")
    if not isinstance(uses, list) or usage not in uses:
        raise InvalidParam(f"The {usage} key's usage must include {usage!r}")
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise InvalidParam(f"The {usage} key must list exactly one key")
    (key_id,) = keys
    key = ed25519_key(obj, key_id) if isinstance(key_id, str) else None
    if key is None or key_id != f"ed25519:{keys[key_id]}":
        raise InvalidParam(f"The {usage} key must be 'ed25519:<public key>': <public key>")
    if "signatures" in obj and not isinstance(obj["signatures"], dict):
        raise BadJSON(f"The {usage} key's signatures must be an object")
    return obj, key


def public_key_id(obj: dict) -> str:
    """The unpadded base64 public key naming a checked cross-signing key."""
    (key_id,) = obj["keys"]
    return key_id.split(":", 1)[1]
