"""Enrolment tokens and requests: token round trip, expiry, damage, the proof of
token possession (without the gateway holding the secret) and of the server keys, the
gateway's answer checked against the token's roster key fingerprint, key rotation."""

from __future__ import annotations

import copy
import json

import pytest

from federation.b64 import decode_base64, encode_base64
from federation.enrolment import (
    TOKEN_PREFIX,
    EnrolmentError,
    TokenRecord,
    build_enrolment_request,
    build_enrolment_response,
    build_key_update_request,
    make_token,
    parse_token,
    token_verifier,
    verify_enrolment_request,
    verify_enrolment_response,
    verify_key_update_request,
)
from federation.keys import SigningKey
from federation.roster import build_roster, roster_key_fingerprint, server_entry, verify_roster

CITY = "city.example"
SCHOOL = "school42.example"
T0 = 1_700_000_000_000
HOUR = 3600 * 1000
ROSTER_KEY = SigningKey("roster_1", bytes(range(32)))
SERVER_KEY = SigningKey("a1", b"\x05" * 32)
OTHER_SERVER_KEY = SigningKey("z9", b"\x06" * 32)


def token(**kw):
    args = dict(
        school_id="42",
        roster_verify_key=ROSTER_KEY.verify_key,
        signer_name=CITY,
        expires_ts=T0 + HOUR,
    )
    args.update(kw)
    return make_token(**args)


def lookup_for(tok, used=False, expires_ts=None):
    rec = TokenRecord(
        token_id=tok.token_id,
        verifier=tok.verifier,
        expires_ts=tok.expires_ts if expires_ts is None else expires_ts,
        school_id=tok.school_id,
        used=used,
    )
    return lambda tid: rec if tid == tok.token_id else None


# --- tokens ------------------------------------------------------------------------------


def test_token_round_trip():
    tok = token()
    text = tok.encode()
    assert text.startswith(TOKEN_PREFIX) and str(tok) == text
    assert all(c.isalnum() or c in "-_:" for c in text)  # pastes into a shell unquoted
    back = parse_token("  " + text + "\n", now_ms=T0)
    assert back == tok
    assert back.roster_key_fingerprint == roster_key_fingerprint(ROSTER_KEY.verify_key)
    assert back.school_id == "42" and back.signer_name == CITY
    assert len(back.secret) == 32 and back.expires_ts == T0 + HOUR


def test_tokens_are_random_and_repr_hides_the_secret():
    a, b = token(), token()
    assert a.token_id != b.token_id and a.secret != b.secret
    assert encode_base64(a.secret, urlsafe=True) not in repr(a)


def test_expired_token():
    tok = token(expires_ts=T0)
    parse_token(tok.encode(), now_ms=T0)  # exactly at expiry: still valid
    with pytest.raises(EnrolmentError, match="expired") as exc:
        parse_token(tok.encode(), now_ms=T0 + 1)
    assert exc.value.reason == "expired" and exc.value.http_status == 403
    parse_token(tok.encode())  # without a clock: parses


@pytest.mark.parametrize(
    "text, message",
    [
        ("hello", "Not an enrolment token"),
        (TOKEN_PREFIX + "!!!", "damaged"),
        (TOKEN_PREFIX + encode_base64(b"[1]", urlsafe=True), "not a JSON object"),
        (TOKEN_PREFIX + encode_base64(b"\xff\xfe", urlsafe=True), "damaged"),
        (None, "must be a string"),
    ],
)
def test_malformed_tokens(text, message):
    with pytest.raises(EnrolmentError, match=message) as exc:
        parse_token(text)
    assert exc.value.reason == "malformed" and exc.value.errcode == "M_BAD_JSON"


def _retoken(tok, **changes):
    body = json.loads(decode_base64(tok.encode()[len(TOKEN_PREFIX) :], urlsafe=True))
    body.update(changes)
    return TOKEN_PREFIX + encode_base64(json.dumps(body).encode(), urlsafe=True)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"secret": "AAAA"}, "secret must be 32 bytes"),
        ({"exp": "soon"}, "bad expiry"),
        ({"roster_key": "short"}, "fingerprint"),
        ({"signer": "bad name!"}, "signer"),
        ({"school_id": 42}, "school ID"),
        ({"id": None}, "token ID"),
    ],
)
def test_tampered_token_fields(changes, message):
    with pytest.raises(EnrolmentError, match=message):
        parse_token(_retoken(token(), **changes))


def test_truncated_token_is_refused():
    text = token().encode()
    with pytest.raises(EnrolmentError) as exc:
        parse_token(text[:-5])
    assert exc.value.reason == "malformed"


def test_verifier_is_not_the_secret_and_depends_on_it():
    tok = token()
    v = token_verifier(tok.secret)
    assert len(decode_base64(v)) == 32
    assert tok.secret not in decode_base64(v) and v == tok.verifier
    assert token_verifier(b"\x00" * 32) != v


# --- enrolment request -------------------------------------------------------------------


def test_request_round_trip():
    tok = token()
    body = build_enrolment_request(tok, SCHOOL, [SERVER_KEY], T0)
    assert "secret" not in json.dumps(body) and body["token_id"] == tok.token_id
    assert encode_base64(tok.secret) not in json.dumps(body)
    got = verify_enrolment_request(json.loads(json.dumps(body)), lookup_for(tok), T0)
    assert got.server_name == SCHOOL and got.token.school_id == "42"
    assert got.verify_keys == {"ed25519:a1": SERVER_KEY.verify_key}


def test_request_with_two_keys():
    tok = token()
    body = build_enrolment_request(tok, SCHOOL, [SERVER_KEY, OTHER_SERVER_KEY], T0)
    got = verify_enrolment_request(body, lookup_for(tok), T0)
    assert set(got.verify_keys) == {"ed25519:a1", "ed25519:z9"}


def test_request_wrong_secret():
    tok = token()
    wrong = make_token(
        school_id="42",
        roster_verify_key=ROSTER_KEY.verify_key,
        signer_name=CITY,
        expires_ts=tok.expires_ts,
        token_id=tok.token_id,
    )
    body = build_enrolment_request(wrong, SCHOOL, [SERVER_KEY], T0)
    with pytest.raises(EnrolmentError, match="wrong secret") as exc:
        verify_enrolment_request(body, lookup_for(tok), T0)
    assert exc.value.reason == "proof"


def test_request_unknown_used_expired_token():
    tok = token()
    body = build_enrolment_request(tok, SCHOOL, [SERVER_KEY], T0)
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_request(body, lambda tid: None, T0)
    assert exc.value.reason == "unknown_token"
    with pytest.raises(EnrolmentError, match="already been used") as exc:
        verify_enrolment_request(body, lookup_for(tok, used=True), T0)
    assert exc.value.reason == "used"
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_request(body, lookup_for(tok), T0 + HOUR + 1)
    assert exc.value.reason == "expired"


@pytest.mark.parametrize(
    "field, value",
    [
        ("server_name", "evil.example"),
        ("verify_keys", {"ed25519:a1": {"key": OTHER_SERVER_KEY.verify_key.encode()}}),
        ("ts", T0 + 1),
    ],
)
def test_request_tampered_after_signing(field, value):
    tok = token()
    body = build_enrolment_request(tok, SCHOOL, [SERVER_KEY], T0)
    body[field] = value
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_request(body, lookup_for(tok), T0)
    assert exc.value.reason in ("proof", "signature")


def test_request_must_be_signed_by_every_registered_key():
    tok = token()
    body = build_enrolment_request(tok, SCHOOL, [SERVER_KEY], T0)
    # Someone with the token but not the key: lists the key, cannot sign with it.
    body2 = copy.deepcopy(body)
    body2["signatures"] = {}
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_request(body2, lookup_for(tok), T0)
    assert exc.value.reason in ("signature", "proof")
    # A second key listed (and covered by the proof) but not signing.
    unsigned_key = {
        "token_id": tok.token_id,
        "server_name": SCHOOL,
        "ts": T0,
        "verify_keys": {
            "ed25519:a1": {"key": SERVER_KEY.verify_key.encode()},
            "ed25519:z9": {"key": OTHER_SERVER_KEY.verify_key.encode()},
        },
    }
    full = build_enrolment_request(tok, SCHOOL, [SERVER_KEY, OTHER_SERVER_KEY], T0)
    unsigned_key["proof"] = full["proof"]
    from federation.signing import sign_json

    sign_json(unsigned_key, SCHOOL, SERVER_KEY)
    with pytest.raises(EnrolmentError, match="ed25519:z9") as exc:
        verify_enrolment_request(unsigned_key, lookup_for(tok), T0)
    assert exc.value.reason == "signature"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b.update({"server_name": "bad name!"}), "server_name"),
        (lambda b: b.update({"verify_keys": {}}), "verify_keys"),
        (lambda b: b.update({"verify_keys": {"ed25519:a1": "x"}}), "verify_keys"),
        (lambda b: b.update({"proof": 5}), "proof"),
        (lambda b: b.update({"token_id": ""}), "token_id"),
        (lambda b: b.update({"ts": 1.5}), "ts"),
        (lambda b: b.update({"extra": 1.5}), "canonical JSON"),
    ],
)
def test_malformed_requests(mutate, message):
    tok = token()
    body = build_enrolment_request(tok, SCHOOL, [SERVER_KEY], T0)
    mutate(body)
    with pytest.raises(EnrolmentError, match=message) as exc:
        verify_enrolment_request(body, lookup_for(tok), T0)
    assert exc.value.http_status == 400
    with pytest.raises(EnrolmentError):
        verify_enrolment_request([body], lookup_for(tok), T0)


# --- enrolment response ------------------------------------------------------------------


def _roster(servers):
    return build_roster(None, servers, T0, 24 * HOUR, CITY, ROSTER_KEY)


def _servers():
    return {
        SCHOOL: server_entry(
            school_id="42", name="Lyceum", district="N", verify_keys=[SERVER_KEY.verify_key]
        )
    }


def test_response_checked_against_token_fingerprint():
    tok = token()
    resp = build_enrolment_response(_roster(_servers()), CITY, ROSTER_KEY.verify_key)
    key, roster = verify_enrolment_response(json.loads(json.dumps(resp)), tok, SCHOOL, T0)
    assert key == ROSTER_KEY.verify_key and SCHOOL in roster.servers


def test_response_from_an_impostor_gateway_refused():
    tok = token()
    impostor = SigningKey("roster_1", b"\x09" * 32)
    doc = build_roster(None, _servers(), T0, HOUR, CITY, impostor)
    resp = build_enrolment_response(doc, CITY, impostor.verify_key)
    with pytest.raises(EnrolmentError, match="fingerprint") as exc:
        verify_enrolment_response(resp, tok, SCHOOL, T0)
    assert exc.value.reason == "roster_key"
    # The right key announced, but the roster signed by another one.
    resp = build_enrolment_response(doc, CITY, ROSTER_KEY.verify_key)
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_response(resp, tok, SCHOOL, T0)
    assert exc.value.reason == "roster"


def test_response_must_list_us_and_be_fresh():
    tok = token()
    resp = build_enrolment_response(_roster({}), CITY, ROSTER_KEY.verify_key)
    with pytest.raises(EnrolmentError, match="does not list"):
        verify_enrolment_response(resp, tok, SCHOOL, T0)
    resp = build_enrolment_response(_roster(_servers()), CITY, ROSTER_KEY.verify_key)
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_response(resp, tok, SCHOOL, T0 + 25 * HOUR)
    assert exc.value.reason == "stale"
    with pytest.raises(EnrolmentError) as exc:
        verify_enrolment_response(dict(resp, signer_name="other.example"), tok, SCHOOL, T0)
    assert exc.value.reason == "roster_key"


# --- key rotation ------------------------------------------------------------------------


def _entry():
    doc = _roster(_servers())
    return verify_roster(doc, ROSTER_KEY.verify_key, CITY).servers[SCHOOL]


def test_key_update_round_trip():
    body = build_key_update_request(SCHOOL, [SERVER_KEY], [OTHER_SERVER_KEY], T0)
    keys = verify_key_update_request(json.loads(json.dumps(body)), _entry(), T0 + 1000)
    assert keys == {"ed25519:z9": OTHER_SERVER_KEY.verify_key}


def test_key_update_refused_without_the_pinned_key():
    attacker = SigningKey("a1", b"\x07" * 32)  # same key ID as the pinned one
    body = build_key_update_request(SCHOOL, [attacker], [OTHER_SERVER_KEY], T0)
    with pytest.raises(EnrolmentError, match="not signed by any key the roster pins") as exc:
        verify_key_update_request(body, _entry(), T0)
    assert exc.value.reason == "signature"


def test_key_update_needs_new_keys_signature_freshness_and_membership():
    body = build_key_update_request(SCHOOL, [SERVER_KEY], [SERVER_KEY], T0)
    body["verify_keys"]["ed25519:z9"] = {"key": OTHER_SERVER_KEY.verify_key.encode()}
    body.pop("signatures")
    from federation.signing import sign_json

    sign_json(body, SCHOOL, SERVER_KEY)
    with pytest.raises(EnrolmentError, match="ed25519:z9"):
        verify_key_update_request(body, _entry(), T0)
    good = build_key_update_request(SCHOOL, [SERVER_KEY], [OTHER_SERVER_KEY], T0)
    with pytest.raises(EnrolmentError) as exc:
        verify_key_update_request(good, _entry(), T0 + 11 * 60 * 1000)
    assert exc.value.reason == "expired"
    with pytest.raises(EnrolmentError) as exc:
        verify_key_update_request(good, None, T0)
    assert exc.value.reason == "roster"
