"""Signing JSON (appendix "Signing Details", "Checking for a Signature", "JSON Signing"
test vectors) and the two ed25519 verification backends."""

from __future__ import annotations

import copy
import hashlib
import json

import nacl.bindings as nb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import signing
from federation.b64 import decode_base64, encode_base64
from federation.canonical_json import CanonicalJSONError
from federation.errors import Unauthorized
from federation.keys import SigningKey, VerifyKey
from federation.signing import (
    SignatureError,
    SignatureInvalid,
    SignatureMalformed,
    SignatureMissing,
    get_signature,
    sign_json,
    signed_bytes,
    verify_json,
    verify_raw_cryptography,
    verify_raw_nacl,
)

# Appendix "Cryptographic Test Vectors": seed, SERVER_NAME = "domain", KEY_ID = "ed25519:1".
SEED = decode_base64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
SERVER = "domain"
KEY = SigningKey("1", SEED)
PUBLIC_B64 = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"  # see test_keys.py

# Appendix "JSON Signing": input, and the signed JSON the algorithm "should emit".
VECTORS = [
    (
        "{}",
        """{
    "signatures": {
        "domain": {
            "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
        }
    }
}""",
    ),  # noqa: E501 - the spec's test vector, verbatim
    (
        '{\n    "one": 1,\n    "two": "Two"\n}',
        """{
    "one": 1,
    "signatures": {
        "domain": {
            "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
        }
    },
    "two": "Two"
}""",
    ),  # noqa: E501 - the spec's test vector, verbatim
]

BACKENDS = [
    pytest.param(verify_raw_nacl, id="pynacl"),
    pytest.param(verify_raw_cryptography, id="cryptography"),
]


@pytest.fixture(params=["pynacl", "cryptography"])
def backend(request, monkeypatch):
    """Run verify_json over each backend."""
    fn = verify_raw_nacl if request.param == "pynacl" else verify_raw_cryptography
    monkeypatch.setattr(signing, "verify_raw", fn)
    return fn


def test_default_backend_is_pynacl():
    assert signing.VERIFY_BACKEND == "pynacl" and signing.verify_raw is verify_raw_nacl


@pytest.mark.parametrize("given_json,expected_json", VECTORS)
def test_appendix_json_signing_vectors_byte_for_byte(given_json, expected_json):
    obj = json.loads(given_json)
    signed = sign_json(obj, SERVER, KEY)
    expected = json.loads(expected_json)
    assert signed == expected
    sig = expected["signatures"]["domain"]["ed25519:1"]
    assert signed["signatures"]["domain"]["ed25519:1"] == sig  # the Base64 string, exactly


@pytest.mark.parametrize("given_json,expected_json", VECTORS)
def test_appendix_vectors_verify(given_json, expected_json, backend):
    verify_json(json.loads(expected_json), SERVER, VerifyKey.decode("ed25519:1", PUBLIC_B64))
    assert KEY.verify_key.encode() == PUBLIC_B64


def test_signed_bytes_of_the_vectors():
    assert signed_bytes(json.loads(VECTORS[0][1])) == b"{}"
    assert signed_bytes(json.loads(VECTORS[1][1])) == b'{"one":1,"two":"Two"}'


# --- unsigned and signatures are not covered --------------------------------------------


def test_unsigned_and_signatures_are_excluded_from_signed_bytes():
    obj = {"b": 2, "a": "x", "unsigned": {"age_ts": 5}, "signatures": {"s": {"k": "v"}}}
    assert signed_bytes(obj) == b'{"a":"x","b":2}'
    assert obj["unsigned"] == {"age_ts": 5}  # not mutated


def test_unsigned_can_change_without_breaking_the_signature(backend):
    obj = sign_json({"one": 1, "unsigned": {"age_ts": 1}}, SERVER, KEY)
    assert obj["unsigned"] == {"age_ts": 1}  # kept, not dropped
    obj["unsigned"] = {"age_ts": 999, "anything": [1, 2]}
    verify_json(obj, SERVER, KEY.verify_key)
    del obj["unsigned"]
    verify_json(obj, SERVER, KEY.verify_key)


def test_unsigned_does_not_change_the_spec_signature():
    with_unsigned = sign_json({"one": 1, "two": "Two", "unsigned": {"age_ts": 7}}, SERVER, KEY)
    assert with_unsigned["signatures"] == json.loads(VECTORS[1][1])["signatures"]


def test_other_signatures_are_kept_and_do_not_affect_ours(backend):
    other = SigningKey.generate("other")
    obj = sign_json({"one": 1, "two": "Two"}, "elsewhere", other)
    sign_json(obj, SERVER, KEY)
    sign_json(obj, SERVER, SigningKey.generate("k2"))
    assert (
        obj["signatures"][SERVER]["ed25519:1"]
        == json.loads(VECTORS[1][1])["signatures"][SERVER]["ed25519:1"]
    )
    assert set(obj["signatures"]) == {"elsewhere", SERVER}
    assert len(obj["signatures"][SERVER]) == 2
    verify_json(obj, "elsewhere", other.verify_key)
    verify_json(obj, SERVER, KEY.verify_key)


# --- failures: each its own error ---------------------------------------------------------


def _signed() -> dict:
    return sign_json({"one": 1, "two": "Two", "nested": {"list": [1, "a"]}}, SERVER, KEY)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda o: o.__setitem__("one", 2),
        lambda o: o.__setitem__("two", "two"),
        lambda o: o.__setitem__("three", 3),
        lambda o: o.pop("two"),
        lambda o: o["nested"]["list"].append(None),
        lambda o: o["nested"].__setitem__("list", [1, "b"]),
    ],
)
def test_tampered_content_is_invalid(tamper, backend):
    obj = _signed()
    tamper(obj)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_json(obj, SERVER, KEY.verify_key)


def test_tampered_signature_bytes_are_invalid(backend):
    obj = _signed()
    raw = bytearray(decode_base64(obj["signatures"][SERVER]["ed25519:1"]))
    for i in (0, 31, 32, 63):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        obj["signatures"][SERVER]["ed25519:1"] = encode_base64(bytes(bad))
        with pytest.raises(SignatureInvalid):
            verify_json(obj, SERVER, KEY.verify_key)


def test_wrong_key_is_invalid(backend):
    obj = _signed()
    impostor = SigningKey.generate("1")  # same key ID, different key
    with pytest.raises(SignatureInvalid):
        verify_json(obj, SERVER, impostor.verify_key)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda o: o.pop("signatures"), "no signatures"),
        (lambda o: o.__setitem__("signatures", {}), "No signature from domain"),
        (
            lambda o: o["signatures"].__setitem__("other.server", o["signatures"].pop(SERVER)),
            "No signature from domain",
        ),
        (lambda o: o["signatures"].__setitem__(SERVER, {}), "with key ed25519:1"),
        (
            lambda o: o["signatures"][SERVER].__setitem__(
                "ed25519:2", o["signatures"][SERVER].pop("ed25519:1")
            ),
            "with key ed25519:1",
        ),
    ],
)
def test_missing_signature(mutate, match):
    obj = _signed()
    mutate(obj)
    with pytest.raises(SignatureMissing, match=match):
        verify_json(obj, SERVER, KEY.verify_key)


@pytest.mark.parametrize(
    "value,match",
    [
        ("not base64!", "not valid unpadded Base64"),
        ("AAAAA", "not valid unpadded Base64"),  # impossible length
        (123, "not valid unpadded Base64"),  # not a string
        ([], "not valid unpadded Base64"),
        (
            "K8280/U9SSy9IVtjBuVeLr-HpOB4BQFWbg-UZaADMtTdGYI7Geitb76LTrr5QV_7Xg4ahLwYGYZzuHGZKM5ZAQ",
            "not valid unpadded Base64",
        ),  # URL-safe alphabet
        (encode_base64(bytes(63)), "63 bytes, expected 64"),
        (encode_base64(bytes(65)), "65 bytes, expected 64"),
        ("", "0 bytes, expected 64"),
    ],
)
def test_malformed_signature_value(value, match):
    obj = _signed()
    obj["signatures"][SERVER]["ed25519:1"] = value
    with pytest.raises(SignatureMalformed, match=match):
        verify_json(obj, SERVER, KEY.verify_key)


@pytest.mark.parametrize(
    "sigs,match",
    [
        ([], "'signatures' must be an object, not an array"),
        ("sig", "'signatures' must be an object, not a string"),
        (5, "'signatures' must be an object, not a number"),
        (True, "'signatures' must be an object, not a boolean"),
        ({SERVER: "sig"}, "signatures.domain must be an object, not a string"),
        ({SERVER: [1]}, "signatures.domain must be an object, not an array"),
        ({SERVER: None}, None),  # null entry: treated as absent
    ],
)
def test_signatures_container_not_an_object(sigs, match):
    obj = _signed()
    obj["signatures"] = sigs
    if match is None:
        with pytest.raises(SignatureMissing):
            verify_json(obj, SERVER, KEY.verify_key)
    else:
        with pytest.raises(SignatureMalformed, match=match):
            verify_json(obj, SERVER, KEY.verify_key)


def test_non_object_is_malformed():
    with pytest.raises(SignatureMalformed):
        verify_json(["not", "an", "object"], SERVER, KEY.verify_key)  # type: ignore[arg-type]


def test_error_classes_are_distinct_and_unauthorized():
    classes = {SignatureMissing, SignatureInvalid, SignatureMalformed}
    for cls in classes:
        assert issubclass(cls, SignatureError) and issubclass(cls, Unauthorized)
        assert cls("x").errcode == "M_UNAUTHORIZED" and cls("x").http_status == 401
        assert not any(issubclass(cls, other) for other in classes - {cls})


def test_object_without_canonical_form_cannot_be_signed_or_verified():
    with pytest.raises(CanonicalJSONError):
        sign_json({"f": 1.5}, SERVER, KEY)
    obj = _signed()
    obj["one"] = 2**60
    with pytest.raises(CanonicalJSONError):
        verify_json(obj, SERVER, KEY.verify_key)


def test_sign_json_refuses_a_malformed_signatures_member():
    with pytest.raises(SignatureMalformed):
        sign_json({"signatures": []}, SERVER, KEY)
    with pytest.raises(SignatureMalformed):
        sign_json({"signatures": {SERVER: "x"}}, SERVER, KEY)


def test_precomputed_message_is_used(backend):
    obj = _signed()
    verify_json(obj, SERVER, KEY.verify_key, message=signed_bytes(obj))
    with pytest.raises(SignatureInvalid):
        verify_json(obj, SERVER, KEY.verify_key, message=b'{"one":2}')


def test_get_signature_returns_raw_bytes():
    obj = _signed()
    raw = get_signature(obj, SERVER, "ed25519:1")
    assert len(raw) == 64 and KEY.verify_key.verify(raw, signed_bytes(obj))


# --- the two backends agree ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=300),
    flip=st.one_of(st.none(), st.integers(0, 64 * 8 - 1)),
    other_seed=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_backends_agree_on_random_signatures(seed, message, flip, other_seed):
    key = SigningKey("k", seed)
    sig = bytearray(key.sign(message))
    if flip is not None:
        sig[flip // 8] ^= 1 << (flip % 8)
    public = (
        key.verify_key.public_bytes
        if other_seed is None
        else SigningKey("k", other_seed).verify_key.public_bytes
    )
    expected = flip is None and (other_seed is None or other_seed == seed)
    assert verify_raw_nacl(public, bytes(sig), message) is expected
    assert verify_raw_cryptography(public, bytes(sig), message) is expected


_IDENTITY = b"\x01" + bytes(31)
_L = 2**252 + 27742317777372353535851937790883648493


def _scalar(seed: bytes) -> int:
    """ed25519 secret scalar of a seed (RFC 8032 5.1.5: SHA-512, clamp)."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little")


def _challenge(r: bytes, a: bytes, m: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + m).digest(), "little") % _L


def _raw_openssl(public: bytes, sig: bytes, msg: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def test_identity_public_key_verifies_nothing():
    # (R = identity, S = 0) "verifies" any message under the identity key in plain OpenSSL.
    sig = _IDENTITY + bytes(32)
    assert _raw_openssl(_IDENTITY, sig, b"anything")  # why the extra checks exist
    for verify in (verify_raw_nacl, verify_raw_cryptography):
        assert not verify(_IDENTITY, sig, b"anything")
        # Non-canonical encoding of the identity (y = p + 1) and the sign-bit variant.
        assert not verify((2**255 - 19 + 1).to_bytes(32, "little"), sig, b"x")
        assert not verify((1 | 1 << 255).to_bytes(32, "little"), sig, b"x")


def test_small_order_r_is_refused_by_both():
    # With the secret scalar a, (R = identity, S = h*a) satisfies S*B = R + h*A exactly.
    a = _scalar(SEED)
    public = KEY.verify_key.public_bytes
    msg = b'{"one":1}'
    s = _challenge(_IDENTITY, public, msg) * a % _L
    sig = _IDENTITY + s.to_bytes(32, "little")
    assert _raw_openssl(public, sig, msg)
    assert not verify_raw_nacl(public, sig, msg)
    assert not verify_raw_cryptography(public, sig, msg)


def test_non_canonical_s_is_refused_by_both():
    msg = b"message"
    sig = KEY.sign(msg)
    s = int.from_bytes(sig[32:], "little") + _L
    bad = sig[:32] + s.to_bytes(32, "little")
    assert not verify_raw_nacl(KEY.verify_key.public_bytes, bad, msg)
    assert not verify_raw_cryptography(KEY.verify_key.public_bytes, bad, msg)


def test_small_order_points_are_the_8_torsion():
    # Each blocked y (canonical ones) is a point of order 1, 2, 4 or 8 (checked with
    # libsodium's point addition), and together with both x signs they are 8 points.
    points = set()
    for y in signing._SMALL_ORDER_YS:
        if y >= 2**255 - 19:
            continue
        for sign in (0, 1):
            p = (y | sign << 255).to_bytes(32, "little")
            q = p
            for _ in range(3):
                q = nb.crypto_core_ed25519_add(q, q)
            assert q == _IDENTITY  # [8]P = O
            if sign == 0 or y not in (1, 2**255 - 20):  # x = 0: the sign bit is not a point
                points.add(p)
    assert len(points) == 8


def test_backends_agree_on_mixed_order_public_keys():
    # A' = A + T (T of order 8) is not small order, so neither backend refuses it up front;
    # a signature made with A's scalar verifies under A' exactly when 8 divides h.
    torsion = next(y for y in signing._SMALL_ORDER_YS if 1 < y < 2**255 - 20)
    a = _scalar(SEED)
    mixed = nb.crypto_core_ed25519_add(KEY.verify_key.public_bytes, torsion.to_bytes(32, "little"))
    outcomes = []
    for i in range(32):
        message = b"m%d" % i
        r = int.from_bytes(hashlib.sha512(b"nonce" + message).digest(), "little") % _L
        big_r = nb.crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little"))
        h = _challenge(big_r, mixed, message)
        sig = big_r + ((r + h * a) % _L).to_bytes(32, "little")
        ok_nacl = verify_raw_nacl(mixed, sig, message)
        assert ok_nacl == verify_raw_cryptography(mixed, sig, message), message
        assert ok_nacl == (h % 8 == 0)
        outcomes.append(ok_nacl)
    assert True in outcomes and False in outcomes  # both kinds were exercised


@pytest.mark.parametrize("verify", BACKENDS)
@pytest.mark.parametrize(
    "public,sig",
    [
        (bytes(31), bytes(64)),
        (bytes(33), bytes(64)),
        (bytes(32), bytes(63)),
        (b"", b""),
    ],
)
def test_wrong_lengths_are_false_not_errors(verify, public, sig):
    assert verify(public, sig, b"m") is False


@pytest.mark.parametrize("verify", BACKENDS)
def test_public_key_not_on_curve_is_false(verify):
    # y = 2 is not the y-coordinate of any curve point.
    public = (2).to_bytes(32, "little")
    assert verify(public, KEY.sign(b"m"), b"m") is False


def test_vectors_verify_with_each_raw_backend():
    for _, expected_json in VECTORS:
        obj = json.loads(expected_json)
        raw = decode_base64(obj["signatures"]["domain"]["ed25519:1"])
        msg = signed_bytes(copy.deepcopy(obj))
        for verify in (verify_raw_nacl, verify_raw_cryptography):
            assert verify(decode_base64(PUBLIC_B64), raw, msg)
