"""The school side of enrolment (node/enrolment_client.py) without a network: gateway URL
rules (https, or http on loopback with a warning), the pinned-key guard, stored files.
The full round trip over HTTP is in tests/e2e/test_gateway_enrolment.py."""

from __future__ import annotations

import json
import os

import pytest
from twisted.internet import defer

from federation.enrolment import make_token
from federation.keys import SigningKey, save_signing_key_file
from federation.roster import RosterState, build_roster, roster_key_fingerprint, server_entry
from node import enrolment_client as ec

CITY = "city.example"
RK = SigningKey("roster_1", b"\x01" * 32)
OTHER_RK = SigningKey("roster_1", b"\x02" * 32)
T0 = 1_700_000_000_000


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://city.example", "https://city.example"),
        ("https://city.example/", "https://city.example"),
        ("https://city.example:8448/base/", "https://city.example:8448/base"),
        ("http://127.0.0.1:8008", "http://127.0.0.1:8008"),
        ("http://localhost:1", "http://localhost:1"),
        ("http://[::1]:8008", "http://[::1]:8008"),
    ],
)
def test_accepted_urls(url, expected):
    warnings: list[str] = []
    assert ec.check_gateway_url(url, warnings.append) == expected
    assert bool(warnings) == url.startswith("http://")
    if warnings:
        assert "loopback" in warnings[0]


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://city.example", "refusing plain http"),
        ("http://10.0.0.1:80", "refusing plain http"),
        ("ftp://city.example", "must look like"),
        ("city.example", "must look like"),
        ("https://user:pw@city.example", "credentials"),
        ("https://city.example/?x=1", "query"),
    ],
)
def test_refused_urls(url, message):
    with pytest.raises(ec.EnrolmentClientError, match=message):
        ec.check_gateway_url(url, lambda m: None)


def test_loopback_detection():
    assert ec.is_loopback_host("127.0.0.2") and ec.is_loopback_host("::1")
    assert ec.is_loopback_host("localhost") and not ec.is_loopback_host("localhost.evil.com")
    assert not ec.is_loopback_host("192.168.1.1") and not ec.is_loopback_host("city")


def _doc(version_servers=("s.example",)):
    servers = {
        n: server_entry(school_id=n, name=n, verify_keys=[SigningKey("a", b"\x05" * 32).verify_key])
        for n in version_servers
    }
    return build_roster(None, servers, T0, 10**9, CITY, RK)


def test_store_and_load_pinned(tmp_path):
    doc = _doc()
    key_path, roster_path = ec.store_enrolment(
        str(tmp_path),
        key=RK.verify_key,
        signer_name=CITY,
        gateway_url="https://city.example",
        doc=doc,
        now_ms=T0,
    )
    key, signer, data = ec.load_pinned(str(tmp_path))
    assert key.public_bytes == RK.verify_key.public_bytes and signer == CITY
    assert data["fingerprint"] == roster_key_fingerprint(RK.verify_key)
    state = RosterState(key, signer)
    state.restore(ec.load_roster(str(tmp_path)))
    assert state.is_member("s.example")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def test_existing_pin_for_another_key_is_kept(tmp_path):
    ec.store_enrolment(
        str(tmp_path),
        key=RK.verify_key,
        signer_name=CITY,
        gateway_url="https://city.example",
        doc=_doc(),
        now_ms=T0,
    )
    ec.check_existing_pin(str(tmp_path), roster_key_fingerprint(RK.verify_key), CITY)
    with pytest.raises(ec.EnrolmentClientError, match="already pins"):
        ec.check_existing_pin(str(tmp_path), roster_key_fingerprint(OTHER_RK.verify_key), CITY)
    with pytest.raises(ec.EnrolmentClientError, match="already pins"):
        ec.check_existing_pin(str(tmp_path), roster_key_fingerprint(RK.verify_key), "other.example")


def test_damaged_pin_file(tmp_path):
    (tmp_path / ec.ROSTER_KEY_FILE).write_text("{not json")
    with pytest.raises(ec.EnrolmentClientError, match="damaged"):
        ec.load_pinned(str(tmp_path))
    (tmp_path / ec.ROSTER_KEY_FILE).write_text(
        json.dumps({"key_id": "ed25519:x", "key": "!!", "signer_name": CITY})
    )
    with pytest.raises(ec.EnrolmentClientError):
        ec.load_pinned(str(tmp_path))
    assert ec.load_pinned(str(tmp_path / "missing")) is None


def _enrol(tmp_path, token_text, url="https://city.example"):
    key_path = str(tmp_path / "signing.key")
    if not os.path.exists(key_path):
        save_signing_key_file(key_path, [SigningKey("s1", b"\x09" * 32)])
    d = defer.ensureDeferred(
        ec.enrol(
            None,
            server_name="s.example",
            data_dir=str(tmp_path),
            signing_key_path=key_path,
            gateway_url=url,
            token_text=token_text,
            now_ms=T0,
            warn=lambda m: None,
        )
    )
    out: list = []
    d.addBoth(out.append)
    assert out, "did not fail before any network I/O"
    return out[0]


def test_bad_tokens_fail_before_any_request(tmp_path):
    failure = _enrol(tmp_path, "parta-enrol:v1:garbage")
    assert failure.check(ec.EnrolmentClientError) and "damaged" in str(failure.value)
    expired = make_token(
        school_id="1", roster_verify_key=RK.verify_key, signer_name=CITY, expires_ts=T0 - 1
    ).encode()
    failure = _enrol(tmp_path, expired)
    assert "expired" in str(failure.value)
    valid = make_token(
        school_id="1", roster_verify_key=RK.verify_key, signer_name=CITY, expires_ts=T0 + 1000
    ).encode()
    failure = _enrol(tmp_path, valid, url="http://city.example")
    assert "refusing plain http" in str(failure.value)
