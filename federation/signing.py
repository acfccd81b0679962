"""Signing and verifying JSON objects (spec appendix "Signing JSON": "Signing Details" and
"Checking for a Signature").

The signed bytes are the canonical JSON of the object without ``signatures`` and ``unsigned``.
Each failure is its own exception so callers (and users) can tell them apart:

* ``SignatureMissing``   - no ``signatures`` member, or no entry for the server or key ID
  (checking steps 1-3);
* ``SignatureMalformed`` - ``signatures`` or an entry is not an object, the signature is not
  a string of unpadded Base64 (step 4) or does not decode to 64 bytes;
* ``SignatureInvalid``   - a well-formed signature that does not verify (step 7): tampered
  content or the wrong key.

All three are ``SignatureError`` -> ``Unauthorized`` (401 ``M_UNAUTHORIZED``).

ed25519 verification has two backends that must agree: PyNaCl (libsodium; used when
installed, about twice as fast here, and what Synapse uses) and ``cryptography`` (OpenSSL).
OpenSSL accepts some signatures libsodium refuses (small-order public keys or ``R``, e.g. the
identity point, which "verify" any message), so the ``cryptography`` path first applies the
same refusals: canonical ``S < L``, canonical public key encoding, and neither the public key
nor ``R`` in the small-order (8-torsion) subgroup.
"""

from __future__ import annotations

from typing import Any, Mapping

from .b64 import decode_base64, encode_base64
from .canonical_json import encode_canonical_json
from .errors import BadJSON, Unauthorized
from .keys import SigningKey, VerifyKey


class SignatureError(Unauthorized):
    """Base of every signature check failure."""


class SignatureMissing(SignatureError):
    """No signature from the required server/key."""


class SignatureInvalid(SignatureError):
    """A signature is present but does not verify (tampered content or wrong key)."""


class SignatureMalformed(SignatureError):
    """The signature or its container is not well-formed (bad base64, wrong length/type)."""


# --- ed25519 backends --------------------------------------------------------------------

_P = 2**255 - 19  # field prime
_L = 2**252 + 27742317777372353535851937790883648493  # group order
_D = (-121665 * pow(121666, -1, _P)) % _P  # curve constant d
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)  # sqrt(-1) mod p
_Y_MASK = (1 << 255) - 1  # encoding minus the sign bit of x


def _sqrt_mod_p(a: int) -> int | None:
    r = pow(a, (_P + 3) // 8, _P)
    if r * r % _P == a % _P:
        return r
    r = r * _SQRT_M1 % _P
    return r if r * r % _P == a % _P else None


def _small_order_ys() -> frozenset[int]:
    """y-coordinates (as encoded, ignoring x's sign bit) of the 8 points of order <= 8.

    Order 1, 2: (0, 1), (0, -1).  Order 4: (+-sqrt(-1), 0).  Order 8: doubling gives y = 0,
    i.e. x^2 = -y^2; on -x^2 + y^2 = 1 + d x^2 y^2 that is d y^4 + 2 y^2 - 1 = 0, so
    y^2 = (-1 +- sqrt(1 + d)) / d.  Non-canonical encodings y + p < 2^255 (of 0 and 1) too.
    """
    ys = {1, _P - 1, 0, _P, _P + 1}
    s = _sqrt_mod_p(1 + _D)
    assert s is not None
    for y2 in ((-1 + s) * pow(_D, -1, _P) % _P, (-1 - s) * pow(_D, -1, _P) % _P):
        y = _sqrt_mod_p(y2)
        if y is not None:
            ys.update((y, _P - y))
    assert len(ys) == 7
    return frozenset(ys)


_SMALL_ORDER_YS = _small_order_ys()


def _refused_by_libsodium(public: bytes, signature: bytes) -> bool:
    """The checks libsodium makes before the verification equation (see module doc)."""
    if int.from_bytes(signature[32:], "little") >= _L:
        return True
    pub_y = int.from_bytes(public, "little") & _Y_MASK
    r_y = int.from_bytes(signature[:32], "little") & _Y_MASK
    return pub_y >= _P or pub_y in _SMALL_ORDER_YS or r_y in _SMALL_ORDER_YS


def verify_raw_cryptography(public: bytes, signature: bytes, message: bytes) -> bool:
    """ed25519 verification with ``cryptography`` (OpenSSL), libsodium-compatible."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(signature) != 64 or len(public) != 32 or _refused_by_libsodium(public, signature):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


try:
    from nacl.bindings import crypto_sign_open as _nacl_open
    from nacl.exceptions import BadSignatureError as _NaclBad
    from nacl.exceptions import CryptoError as _NaclError
except ImportError:  # pragma: no cover - PyNaCl is a dependency; fallback for minimal installs
    verify_raw_nacl = None
    VERIFY_BACKEND = "cryptography"
    verify_raw = verify_raw_cryptography
else:

    def verify_raw_nacl(public: bytes, signature: bytes, message: bytes) -> bool:
        """ed25519 verification with PyNaCl (libsodium)."""
        if len(signature) != 64 or len(public) != 32:
            return False
        try:
            _nacl_open(signature + message, public)
            return True
        except (_NaclBad, _NaclError, ValueError, TypeError):
            return False

    VERIFY_BACKEND = "pynacl"
    verify_raw = verify_raw_nacl

verify_raw.__doc__ = "True if ``signature`` (64 bytes) by ``public`` (32 bytes) signs ``message``."


# --- signing JSON ------------------------------------------------------------------------


def signed_bytes(obj: Mapping[str, Any]) -> bytes:
    """Canonical JSON of ``obj`` without ``signatures`` and ``unsigned``.

    Raises ``CanonicalJSONError`` (``M_BAD_JSON``) if ``obj`` has no canonical form.
    """
    if not isinstance(obj, Mapping):
        raise BadJSON(f"Only JSON objects can be signed, not {type(obj).__name__}")
    return encode_canonical_json(
        {k: v for k, v in obj.items() if k != "signatures" and k != "unsigned"}
    )


def sign_json(obj: dict[str, Any], server_name: str, key: SigningKey) -> dict[str, Any]:
    """Add ``key``'s signature for ``server_name`` to ``obj`` (in place) and return it.

    Existing signatures (from other servers or keys) and ``unsigned`` are kept.
    """
    sigs = obj.get("signatures")
    if sigs is None:
        sigs = {}
    elif not isinstance(sigs, dict) or not isinstance(sigs.get(server_name, {}), dict):
        raise SignatureMalformed("Cannot add a signature: 'signatures' is not an object of objects")
    sig = encode_base64(key.sign(signed_bytes(obj)))
    sigs.setdefault(server_name, {})[key.key_id] = sig
    obj["signatures"] = sigs
    return obj


def get_signature(obj: Mapping[str, Any], server_name: str, key_id: str) -> bytes:
    """The decoded 64-byte signature by ``server_name``/``key_id``, or a ``SignatureError``."""
    if not isinstance(obj, Mapping):
        raise SignatureMalformed("Signed value must be a JSON object")
    sigs = obj.get("signatures")
    if sigs is None:
        raise SignatureMissing("Object has no signatures")
    if not isinstance(sigs, Mapping):
        raise SignatureMalformed(f"'signatures' must be an object, not {_json_type(sigs)}")
    by_server = sigs.get(server_name)
    if by_server is None:
        raise SignatureMissing(f"No signature from {server_name}")
    if not isinstance(by_server, Mapping):
        raise SignatureMalformed(
            f"signatures.{server_name} must be an object, not {_json_type(by_server)}"
        )
    b64 = by_server.get(key_id)
    if b64 is None:
        raise SignatureMissing(f"No signature from {server_name} with key {key_id}")
    try:
        raw = decode_base64(b64)
    except BadJSON:
        raise SignatureMalformed(
            f"Signature {server_name}/{key_id} is not valid unpadded Base64"
        ) from None
    if len(raw) != 64:
        raise SignatureMalformed(
            f"Signature {server_name}/{key_id} is {len(raw)} bytes, expected 64"
        )
    return raw


def verify_json(
    obj: Mapping[str, Any], server_name: str, verify_key: VerifyKey, *, message: bytes | None = None
) -> None:
    """Raise a ``SignatureError`` unless ``obj`` carries a valid signature by ``verify_key``.

    ``message`` may be passed when the caller already holds ``signed_bytes(obj)``.  An object
    without a canonical JSON form raises ``CanonicalJSONError`` (``M_BAD_JSON``).
    """
    raw = get_signature(obj, server_name, verify_key.key_id)
    if message is None:
        message = signed_bytes(obj)
    if not verify_raw(verify_key.public_bytes, raw, message):
        raise SignatureInvalid(
            f"Signature {server_name}/{verify_key.key_id} does not match the content"
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__
