"""Checks on receipt, steps 1-3 split in two: ``prepare_received_event`` (format, content
hash, every signature check but the ed25519 verification itself) + ``run_verify_jobs``
(the verifications).  Together they must decide exactly as ``check_received_event``.

Spec: server-server API "Checks performed on receipt of a PDU" (steps 1-3), "Validating
hashes and signatures on received events" (signatures cover the redacted event, so a PDU
whose content hash does not match is redacted and still verifies).
"""

from __future__ import annotations

import copy

import pytest

from federation.events.builder import build_create_event, build_event, sign_event
from federation.events.checks import (
    SignatureKeyUnknown,
    VerifyJob,
    check_received_event,
    prepare_received_event,
    run_verify_jobs,
)
from federation.events.hashes import redacted_signing_bytes
from federation.events.redaction import redact
from federation.keys import SigningKey
from federation.room_versions import V10, V11, V12
from federation.signing import SignatureInvalid, SignatureMalformed, SignatureMissing

VERSIONS = [V10, V11, V12]


def ids(rv):
    return "v" + rv.identifier


KEY_A = SigningKey("a1", bytes(range(32)))
KEY_A2 = SigningKey("a2", bytes(range(2, 34)))
KEY_B = SigningKey("b1", bytes(range(1, 33)))
KEYS = {
    ("a.example", KEY_A.key_id): KEY_A.verify_key,
    ("a.example", KEY_A2.key_id): KEY_A2.verify_key,
    ("b.example", KEY_B.key_id): KEY_B.verify_key,
}


def lookup(server, key_id):
    return KEYS.get((server, key_id))


def create(rv):
    return build_create_event(
        rv,
        server_name="a.example",
        signing_key=KEY_A,
        creator="@alice:a.example",
        content={},
        origin_server_ts=1000,
        room_id=None if rv is V12 else "!room:a.example",
    )


def message(rv, body="Homework: page 42", **kw):
    c = create(rv)
    args = dict(
        server_name="a.example",
        signing_key=KEY_A,
        type="m.room.message",
        sender="@alice:a.example",
        content={"msgtype": "m.text", "body": body},
        room_id=c.room_id,
        prev_events=[c.event_id],
        auth_events=[] if rv is V12 else [c.event_id],
        depth=2,
        origin_server_ts=2000,
    )
    args.update(kw)
    return build_event(rv, **args)


def restricted_join(rv):
    c = create(rv)
    j = build_event(
        rv,
        server_name="b.example",
        signing_key=KEY_B,
        type="m.room.member",
        sender="@bob:b.example",
        state_key="@bob:b.example",
        content={"membership": "join", "join_authorised_via_users_server": "@alice:a.example"},
        room_id=c.room_id,
        prev_events=[c.event_id],
        auth_events=[],
        depth=3,
        origin_server_ts=3000,
    )
    return sign_event(copy.deepcopy(j.pdu), rv, "a.example", KEY_A)


def forge(pdu, rv, server="a.example", key_version="a1"):
    """``pdu`` with ``server``'s signature replaced by one of another key (same key ID)."""
    forged = copy.deepcopy(pdu)
    del forged["signatures"][server]
    return sign_event(forged, rv, server, SigningKey(key_version, b"\x07" * 32))


# --- valid events ------------------------------------------------------------------------


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_valid_event_prepares_like_the_full_check(rv):
    m = message(rv, unsigned={"age": 5})
    before = copy.deepcopy(m.pdu)
    event, jobs = prepare_received_event(m.pdu, rv, lookup)
    full = check_received_event(m.pdu, rv, lookup)
    assert m.pdu == before  # the input is not touched
    assert event.event_id == full.event_id == m.event_id
    assert event.pdu == full.pdu == m.pdu and event.pdu is not m.pdu
    assert not event.content_hash_mismatch
    # One verification: the sender's server's signature over the redacted event.
    assert len(jobs) == 1
    [job] = jobs
    assert isinstance(job, VerifyJob)
    assert (job.server, job.key_id) == ("a.example", KEY_A.key_id)
    assert job.public == KEY_A.verify_key.public_bytes
    assert job.message == redacted_signing_bytes(m.pdu, rv)
    assert run_verify_jobs(jobs) is None


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_restricted_join_has_a_job_per_required_server(rv):
    pdu = restricted_join(rv)
    event, jobs = prepare_received_event(pdu, rv, lookup)
    assert sorted((j.server, j.key_id) for j in jobs) == [
        ("a.example", KEY_A.key_id),
        ("b.example", KEY_B.key_id),
    ]
    assert run_verify_jobs(jobs) is None
    assert event.event_id == check_received_event(pdu, rv, lookup).event_id


def test_every_known_key_of_a_server_is_verified_unknown_ones_skipped():
    m = message(V12)
    pdu = sign_event(copy.deepcopy(m.pdu), V12, "a.example", KEY_A2)
    pdu["signatures"]["a.example"]["ed25519:old"] = "A" * 86  # unknown: skipped
    pdu["signatures"]["a.example"]["curve25519:x"] = "whatever"  # other algorithm
    _, jobs = prepare_received_event(pdu, V12, lookup)
    assert sorted(j.key_id for j in jobs) == [KEY_A.key_id, KEY_A2.key_id]
    assert run_verify_jobs(jobs) is None


def test_no_jobs_is_a_pass():
    assert run_verify_jobs([]) is None


# --- bad signatures ------------------------------------------------------------------------


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_forged_signature_fails_only_when_the_jobs_run(rv):
    forged = forge(message(rv).pdu, rv)
    event, jobs = prepare_received_event(forged, rv, lookup)  # no verification yet
    failure = run_verify_jobs(jobs)
    assert isinstance(failure, SignatureInvalid)
    assert "a.example/ed25519:a1" in str(failure)
    with pytest.raises(SignatureInvalid) as exc:
        check_received_event(forged, rv, lookup)
    assert str(exc.value) == str(failure)


def test_second_key_of_a_server_forged_names_that_key():
    m = message(V12)
    pdu = sign_event(copy.deepcopy(m.pdu), V12, "a.example", KEY_A2)
    pdu["signatures"]["a.example"][KEY_A2.key_id] = forge(m.pdu, V12, key_version="a2")[
        "signatures"
    ]["a.example"][KEY_A2.key_id]
    _, jobs = prepare_received_event(pdu, V12, lookup)
    failure = run_verify_jobs(jobs)
    assert isinstance(failure, SignatureInvalid)
    assert "a.example/ed25519:a2" in str(failure)
    assert "ed25519:a1" not in str(failure)


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_forged_authorising_server_signature_names_that_server(rv):
    pdu = forge(restricted_join(rv), rv, "a.example")
    _, jobs = prepare_received_event(pdu, rv, lookup)
    failure = run_verify_jobs(jobs)
    assert isinstance(failure, SignatureInvalid)
    assert "a.example/ed25519:a1" in str(failure)
    assert "join_authorised_via_users_server" in str(failure)


@pytest.mark.parametrize(
    "field, value", [("depth", 3), ("sender", "@mallory:a.example"), ("prev_events", [])]
)
def test_tampered_protected_field_fails_the_jobs(field, value):
    pdu = copy.deepcopy(message(V12).pdu)
    pdu[field] = value
    _, jobs = prepare_received_event(pdu, V12, lookup)
    failure = run_verify_jobs(jobs)
    assert isinstance(failure, SignatureInvalid) and "does not match" in str(failure)


def test_missing_signature_is_raised_at_prepare_time():
    pdu = copy.deepcopy(message(V12).pdu)
    pdu["signatures"] = {}
    sign_event(pdu, V12, "b.example", KEY_B)  # valid, but not the sender's server
    with pytest.raises(SignatureMissing, match="a.example"):
        prepare_received_event(pdu, V12, lookup)


def test_restricted_join_without_authorising_signature_is_raised_at_prepare_time():
    c = create(V11)
    j = build_event(
        V11,
        server_name="b.example",
        signing_key=KEY_B,
        type="m.room.member",
        sender="@bob:b.example",
        state_key="@bob:b.example",
        content={"membership": "join", "join_authorised_via_users_server": "@alice:a.example"},
        room_id=c.room_id,
        prev_events=[c.event_id],
        auth_events=[c.event_id],
        depth=3,
        origin_server_ts=3000,
    )
    with pytest.raises(SignatureMissing, match="join_authorised_via_users_server"):
        prepare_received_event(j.pdu, V11, lookup)


def test_unknown_key_is_raised_at_prepare_time():
    m = message(V12)
    with pytest.raises(SignatureKeyUnknown, match="ed25519:a1"):
        prepare_received_event(m.pdu, V12, lambda server, key_id: None)


@pytest.mark.parametrize("sig", ["!!!", "AAAA"], ids=["not-base64", "too-short"])
def test_malformed_signature_is_raised_at_prepare_time(sig):
    pdu = copy.deepcopy(message(V12).pdu)
    pdu["signatures"]["a.example"][KEY_A.key_id] = sig
    with pytest.raises(SignatureMalformed):
        prepare_received_event(pdu, V12, lookup)


# --- content hash ----------------------------------------------------------------------------


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_content_hash_mismatch_gives_the_redacted_event_and_jobs_that_verify(rv):
    m = message(rv, unsigned={"age": 1})
    tampered = copy.deepcopy(m.pdu)
    tampered["content"]["body"] = "Homework cancelled!"
    before = copy.deepcopy(tampered)
    event, jobs = prepare_received_event(tampered, rv, lookup)
    assert tampered == before
    assert event.content_hash_mismatch is True
    assert event.pdu == redact(m.pdu, rv)
    assert event.content == {}
    assert event.event_id == m.event_id
    # The signatures cover the redacted form: the altered content does not break them.
    assert jobs and run_verify_jobs(jobs) is None
    full = check_received_event(tampered, rv, lookup)
    assert full.pdu == event.pdu and full.content_hash_mismatch is True


def test_content_hash_mismatch_with_a_forged_signature_still_fails():
    rv = V12
    tampered = forge(message(rv).pdu, rv)
    tampered["content"]["body"] = "changed"
    event, jobs = prepare_received_event(tampered, rv, lookup)
    assert event.content_hash_mismatch is True
    assert isinstance(run_verify_jobs(jobs), SignatureInvalid)
    with pytest.raises(SignatureInvalid):
        check_received_event(tampered, rv, lookup)
