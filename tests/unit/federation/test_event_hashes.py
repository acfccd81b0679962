"""Content hash, reference hash, event IDs and the appendix "Event Signing" test vectors.

Spec: server-server API "Signing Events"; appendices "Cryptographic Test Vectors" >
"Event Signing"; rooms "Event IDs" (v4 fragment); rooms v12 room IDs.
"""

from __future__ import annotations

import base64
import copy
import hashlib

import canonicaljson  # independent reference implementation (test extra)
import pytest

from federation.b64 import decode_base64
from federation.errors import BadJSON
from federation.events.builder import sign_event
from federation.events.checks import verify_event_signatures
from federation.events.hashes import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    room_id_from_create_event_id,
)
from federation.keys import SigningKey
from federation.room_versions import V10, V11, V12
from federation.signing import SignatureInvalid

# Appendix "Signing Key": seed, server name "domain", key ID "ed25519:1".
SEED = decode_base64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
KEY = SigningKey("1", SEED)

MINIMAL_EVENT = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
MINIMAL_SIGNED = {
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": (
                "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
            )
        }
    },
    "type": "X",
    "unsigned": {"age_ts": 1000000},
}
REDACTABLE_EVENT = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
REDACTABLE_SIGNED = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": (
                "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
            )
        }
    },
    "unsigned": {"age_ts": 1000000},
}


def hash_and_sign(event: dict, room_version) -> dict:
    event = copy.deepcopy(event)
    add_content_hash(event)
    sign_event(event, room_version, "domain", KEY)
    return event


def lookup(server: str, key_id: str):
    return KEY.verify_key if (server, key_id) == ("domain", "ed25519:1") else None


# --- appendix vectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, expected",
    [
        (MINIMAL_EVENT, MINIMAL_SIGNED),
        (REDACTABLE_EVENT, REDACTABLE_SIGNED),
    ],
    ids=["minimal", "redactable"],
)
def test_appendix_event_signing_vectors_byte_for_byte(event, expected):
    # The vectors keep the top-level `origin` key in the signed (redacted) form, which the
    # v9 redaction rules of room version 10 protect.
    signed = hash_and_sign(event, V10)
    assert signed == expected
    assert canonicaljson.encode_canonical_json(signed) == canonicaljson.encode_canonical_json(
        expected
    )


@pytest.mark.parametrize("expected", [MINIMAL_SIGNED, REDACTABLE_SIGNED])
def test_appendix_vectors_verify_and_content_hash_matches(expected):
    verify_event_signatures(expected, V10, lookup)
    assert check_content_hash(expected)


def test_v11_redaction_rules_sign_different_bytes_for_the_vector():
    # v11 no longer protects `origin`, so the signed bytes and the signature differ...
    v11 = hash_and_sign(MINIMAL_EVENT, V11)
    assert v11["hashes"] == MINIMAL_SIGNED["hashes"]  # content hash is version-independent
    assert v11["signatures"] != MINIMAL_SIGNED["signatures"]
    verify_event_signatures(v11, V11, lookup)
    # ...and the v10 signature does not verify under the v11 rules.
    with pytest.raises(SignatureInvalid):
        verify_event_signatures(MINIMAL_SIGNED, V11, lookup)


def test_redactable_vector_signature_survives_redaction():
    # The signature covers only the redacted event: drop the body, it still verifies.
    redacted = copy.deepcopy(REDACTABLE_SIGNED)
    redacted["content"] = {}
    del redacted["unsigned"]
    verify_event_signatures(redacted, V10, lookup)
    assert not check_content_hash(redacted)  # but the content hash no longer matches


# --- content hash -------------------------------------------------------------------------


def reference_sha256(obj) -> bytes:
    return hashlib.sha256(canonicaljson.encode_canonical_json(obj)).digest()


def test_content_hash_excludes_unsigned_signatures_hashes_only():
    pdu = copy.deepcopy(REDACTABLE_SIGNED)
    stripped = {k: v for k, v in pdu.items() if k not in ("unsigned", "signatures", "hashes")}
    assert compute_content_hash(pdu) == reference_sha256(stripped)
    changed = copy.deepcopy(pdu)
    changed["unsigned"] = {"age": 5}
    changed["signatures"]["other"] = {"ed25519:x": "abc"}
    changed["hashes"]["sha512"] = "zzz"
    assert compute_content_hash(changed) == compute_content_hash(pdu)
    changed["content"]["body"] += "!"
    assert compute_content_hash(changed) != compute_content_hash(pdu)


def test_add_content_hash_sets_unpadded_base64_in_place():
    pdu = {"type": "X", "content": {"a": 1}}
    assert add_content_hash(pdu) is pdu
    b64 = pdu["hashes"]["sha256"]
    assert "=" not in b64 and len(b64) == 43
    assert base64.b64decode(b64 + "=") == compute_content_hash(pdu)


@pytest.mark.parametrize(
    "hashes", [None, {}, {"sha256": 5}, {"sha256": "!!notbase64"}, {"sha256": "AAAA"}], ids=str
)
def test_check_content_hash_false_for_missing_or_malformed(hashes):
    pdu = copy.deepcopy(REDACTABLE_SIGNED)
    if hashes is None:
        del pdu["hashes"]
    else:
        pdu["hashes"] = hashes
    assert check_content_hash(pdu) is False


def test_content_hash_refuses_floats():
    with pytest.raises(BadJSON):
        compute_content_hash({"type": "X", "content": {"n": 1.5}})


# --- reference hash and event IDs ---------------------------------------------------------

MESSAGE = {
    "type": "m.room.message",
    "sender": "@alice:a.example",
    "room_id": "!room:a.example",
    "content": {"msgtype": "m.text", "body": "Homework: page 42"},
    "depth": 7,
    "prev_events": ["$" + "A" * 43],
    "auth_events": ["$" + "B" * 43],
    "origin_server_ts": 1763900000000,
    "origin": "a.example",
    "hashes": {"sha256": "x"},
    "signatures": {"a.example": {"ed25519:1": "sig"}},
    "unsigned": {"age": 10},
}


@pytest.mark.parametrize("room_version", [V10, V11, V12], ids=lambda v: "v" + v.identifier)
def test_reference_hash_is_sha256_of_redacted_event_without_signatures(room_version):
    redacted = {k: v for k, v in MESSAGE.items() if k not in ("signatures", "unsigned")}
    redacted["content"] = {}  # m.room.message keeps no content
    if room_version is not V10:
        del redacted["origin"]  # not protected from v11 on
    expected = reference_sha256(redacted)
    assert compute_reference_hash(MESSAGE, room_version) == expected
    event_id = compute_event_id(MESSAGE, room_version)
    assert event_id == "$" + base64.urlsafe_b64encode(expected).decode().rstrip("=")
    assert len(event_id) == 44 and "+" not in event_id and "/" not in event_id


def test_event_id_ignores_unsigned_signatures_and_redactable_content():
    base = compute_event_id(MESSAGE, V12)
    other = copy.deepcopy(MESSAGE)
    other["unsigned"] = {"age": 99999}
    other["signatures"]["b.example"] = {"ed25519:z": "more"}
    other["content"]["body"] = "different body"  # covered by hashes.sha256, not directly
    assert compute_event_id(other, V12) == base
    other["hashes"]["sha256"] = "y"
    assert compute_event_id(other, V12) != base
    other = copy.deepcopy(MESSAGE)
    other["depth"] = 8
    assert compute_event_id(other, V12) != base


def test_event_id_differs_between_v10_and_v11_when_origin_is_present():
    assert compute_event_id(MESSAGE, V10) != compute_event_id(MESSAGE, V11)
    assert compute_event_id(MESSAGE, V11) == compute_event_id(MESSAGE, V12)
    no_origin = {k: v for k, v in MESSAGE.items() if k != "origin"}
    assert compute_event_id(no_origin, V10) == compute_event_id(no_origin, V11)


def test_room_id_from_create_event_id():
    assert room_id_from_create_event_id("$abc-_123") == "!abc-_123"
    for bad in ["", "$", "!abc", "abc", None]:
        with pytest.raises(BadJSON):
            room_id_from_create_event_id(bad)
