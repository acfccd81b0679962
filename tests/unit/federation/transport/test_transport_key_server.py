"""Publishing keys, validating key responses, notary answers, rotation
(server-server API "Retrieving server keys")."""

from __future__ import annotations

import copy

import pytest
from support.clocks import FakeClock
from support.deferreds import result_of

from federation.errors import BadJSON, InvalidParam
from federation.keys import KeyFormatError, VerifyKey
from federation.signing import sign_json, verify_json
from federation.transport.key_responses import SEVEN_DAYS_MS, InvalidKeyResponse, parse_server_keys
from federation.transport.key_server import (
    KeyServer,
    NotaryService,
    OldKey,
    ServerCriteria,
    build_server_keys,
    notary_sign,
    old_keys_from_json,
    old_keys_to_json,
    parse_key_query_body,
    parse_key_query_get,
    rotate_signing_keys,
)
from transport_support import key

SERVER = "school-a.example"
K1, K2, OLD = key("k1", 1), key("k2", 2), key("old", 3)
DAY = 24 * 3600 * 1000


def published(now=1_000_000, valid_for=DAY, keys=(K1,), old=()):
    return build_server_keys(SERVER, list(keys), old, now + valid_for)


# --- publishing ----------------------------------------------------------------------------
def test_server_keys_response_shape_and_signatures():
    clock = FakeClock(5_000)
    ks = KeyServer(SERVER, [K1, K2], clock, [OldKey(OLD.verify_key, 4_000)])
    body = ks.server_keys_response()
    assert body["server_name"] == SERVER
    assert body["verify_keys"] == {
        "ed25519:k1": {"key": K1.verify_key.encode()},
        "ed25519:k2": {"key": K2.verify_key.encode()},
    }
    assert body["old_verify_keys"] == {
        "ed25519:old": {"key": OLD.verify_key.encode(), "expired_ts": 4_000}
    }
    assert body["valid_until_ts"] == 5_000 + DAY
    verify_json(body, SERVER, K1.verify_key)
    verify_json(body, SERVER, K2.verify_key)
    assert parse_server_keys(body, SERVER, 5_000).key_ids() == {
        "ed25519:k1",
        "ed25519:k2",
        "ed25519:old",
    }


def test_response_is_reused_until_half_its_lifetime_then_refreshed():
    clock = FakeClock(0)
    ks = KeyServer(SERVER, [K1], clock, key_lifetime_ms=4 * 3600 * 1000)
    first = ks.server_keys_response()
    clock.advance(2 * 3600 * 1000 - 1)
    assert ks.server_keys_response() is first
    clock.advance(1)
    second = ks.server_keys_response()
    assert second["valid_until_ts"] == 6 * 3600 * 1000
    ks.set_keys([K2], [OldKey(K1.verify_key, clock.now)])
    third = ks.server_keys_response()
    assert set(third["verify_keys"]) == {"ed25519:k2"}
    assert third["old_verify_keys"]["ed25519:k1"]["expired_ts"] == clock.now


def test_key_lifetime_below_an_hour_is_refused():
    with pytest.raises(ValueError, match="one hour"):
        KeyServer(SERVER, [K1], FakeClock(), key_lifetime_ms=60_000)
    with pytest.raises(ValueError, match="at least one signing key"):
        KeyServer(SERVER, [], FakeClock())


# --- validating responses ------------------------------------------------------------------
def test_parse_valid_response_and_validity_cap():
    body = published(now=0, valid_for=30 * DAY, old=[OldKey(OLD.verify_key, 77)])
    keys = parse_server_keys(body, SERVER, received_at_ms=1_000)
    assert keys.verify_keys["ed25519:k1"] == K1.verify_key
    # "the lesser of valid_until_ts and 7 days into the future"
    assert keys.key_valid_until("ed25519:k1") == 1_000 + SEVEN_DAYS_MS
    assert keys.key_valid_until("ed25519:old") == 77
    assert keys.key_valid_until("ed25519:nope") is None
    short = parse_server_keys(published(now=0, valid_for=DAY), SERVER, 1_000)
    assert short.key_valid_until("ed25519:k1") == DAY


def mutate(body, fn, resign=False):
    body = copy.deepcopy(body)
    fn(body)
    if resign:
        body.pop("signatures", None)
        sign_json(body, SERVER, K1)
    return body


@pytest.mark.parametrize(
    "change, resign, why",
    [
        (lambda b: b.update(server_name="evil.example"), True, "names server 'evil.example'"),
        (lambda b: b.update(valid_until_ts="soon"), True, "valid_until_ts must be an integer"),
        (lambda b: b.update(valid_until_ts=True), True, "valid_until_ts must be an integer"),
        (lambda b: b.pop("verify_keys"), False, "missing verify_keys"),
        (lambda b: b.update(verify_keys=[]), False, "verify_keys must be an object"),
        (lambda b: b["verify_keys"]["ed25519:k1"].update(key="@@"), False, "Base64"),
        (lambda b: b["verify_keys"]["ed25519:k1"].update(key="AAAA"), False, "3 bytes"),
        (
            lambda b: b["old_verify_keys"].update({"ed25519:o": {"key": K2.verify_key.encode()}}),
            True,
            "expired_ts",
        ),
        (lambda b: b.update(valid_until_ts=b["valid_until_ts"] + 1), False, "does not verify"),
        (lambda b: b.pop("signatures"), False, "not signed by school-a.example"),
        (
            lambda b: b.update(signatures={SERVER: {"ed25519:zz": "abc"}}),
            False,
            "with any of its keys",
        ),
        (lambda b: b["signatures"][SERVER].update({"ed25519:k1": "!!"}), False, "not Base64"),
    ],
)
def test_bad_responses_are_refused(change, resign, why):
    body = mutate(published(), change, resign)
    with pytest.raises(InvalidKeyResponse) as exc:
        parse_server_keys(body, SERVER, 1_000)
    assert why in exc.value.message


def test_response_signed_by_a_key_it_does_not_list_is_refused():
    # Signed only with K2, but lists K1: not self-signed with its own keys.
    body = {
        "server_name": SERVER,
        "verify_keys": {"ed25519:k1": {"key": K1.verify_key.encode()}},
        "old_verify_keys": {},
        "valid_until_ts": 10,
    }
    sign_json(body, SERVER, K2)
    with pytest.raises(InvalidKeyResponse, match="with any of its keys"):
        parse_server_keys(body, SERVER, 0)


def test_unknown_algorithms_are_ignored_not_fatal():
    body = published()
    body = mutate(body, lambda b: b["verify_keys"].update({"curve9:x": {"key": "zzz"}}), True)
    assert set(parse_server_keys(body, SERVER, 0).verify_keys) == {"ed25519:k1"}


def test_non_object_response():
    with pytest.raises(InvalidKeyResponse, match="not a JSON object"):
        parse_server_keys([1], SERVER, 0)


# --- notary query parsing ------------------------------------------------------------------
def test_parse_query_body():
    crit = parse_key_query_body(
        {
            "server_keys": {
                "a.example": {
                    "ed25519:x": {"minimum_valid_until_ts": 5},
                    "ed25519:y": {"minimum_valid_until_ts": 9},
                    "ed25519:z": {},
                },
                "b.example:8448": {},
            }
        }
    )
    assert crit == {
        "a.example": ServerCriteria(frozenset({"ed25519:x", "ed25519:y", "ed25519:z"}), 9),
        "b.example:8448": ServerCriteria(frozenset(), None),
    }
    assert parse_key_query_body({"server_keys": {}}) == {}


@pytest.mark.parametrize(
    "body, exc, why",
    [
        ([], BadJSON, "JSON object"),
        ({}, BadJSON, "server_keys"),
        ({"server_keys": []}, BadJSON, "server_keys"),
        ({"server_keys": {"bad name": {}}}, InvalidParam, "bad name"),
        ({"server_keys": {"a.example": []}}, BadJSON, "object of key IDs"),
        ({"server_keys": {"a.example": {"ed25519:x": 5}}}, BadJSON, "must be an object"),
        (
            {"server_keys": {"a.example": {"ed25519:x": {"minimum_valid_until_ts": "5"}}}},
            BadJSON,
            "integer",
        ),
    ],
)
def test_parse_query_body_errors(body, exc, why):
    with pytest.raises(exc, match=why):
        parse_key_query_body(body)


def test_parse_query_get():
    assert parse_key_query_get("a.example", None) == {"a.example": ServerCriteria()}
    assert parse_key_query_get("a.example", "123") == {
        "a.example": ServerCriteria(frozenset(), 123)
    }
    with pytest.raises(InvalidParam, match="integer"):
        parse_key_query_get("a.example", "soon")
    with pytest.raises(InvalidParam):
        parse_key_query_get("a..example", None)


# --- notary answers ------------------------------------------------------------------------
NOTARY = "notary.example"
NK = key("n1", 7)


def test_notary_sign_keeps_origin_signature_and_adds_ours():
    body = published()
    body["signatures"]["third.example"] = {"ed25519:t": "xyz"}
    out = notary_sign(body, NOTARY, [NK])
    assert set(out["signatures"]) == {SERVER, NOTARY}
    verify_json(out, SERVER, K1.verify_key)
    verify_json(out, NOTARY, NK.verify_key)
    assert "third.example" in body["signatures"]  # input untouched


class FakeSource:
    def __init__(self, stored=(), fresh=None, fail=False):
        self.stored = list(stored)
        self.fresh = fresh
        self.fail = fail
        self.refreshes = []

    def stored_responses(self, server):
        return [r for r in self.stored if r.server_name == server]

    async def refresh_direct(self, server, minimum):
        self.refreshes.append((server, minimum))
        if self.fail:
            raise ConnectionError("offline")
        if self.fresh is not None:
            self.stored.append(self.fresh)
        return self.fresh


def notary(source, now=10_000):
    clock = FakeClock(now)
    return NotaryService(KeyServer(NOTARY, [NK], clock), source, clock), clock


def test_notary_serves_cached_response_double_signed():
    cached = parse_server_keys(published(now=0, valid_for=DAY), SERVER, 0)
    svc, _ = notary(FakeSource([cached]))
    status, body = result_of(svc.handle_get(SERVER))
    assert status == 200 and len(body["server_keys"]) == 1
    entry = body["server_keys"][0]
    verify_json(entry, SERVER, K1.verify_key)
    verify_json(entry, NOTARY, NK.verify_key)
    assert entry["valid_until_ts"] == DAY


def test_notary_refreshes_when_cached_keys_expire_too_soon():
    cached = parse_server_keys(published(now=0, valid_for=DAY), SERVER, 0)
    fresh = parse_server_keys(published(now=5 * DAY, valid_for=DAY), SERVER, 5 * DAY)
    source = FakeSource([cached], fresh=fresh)
    svc, _ = notary(source)
    _, body = result_of(
        svc.handle_post(
            {"server_keys": {SERVER: {"ed25519:k1": {"minimum_valid_until_ts": 3 * DAY}}}}
        )
    )
    assert source.refreshes == [(SERVER, 3 * DAY)]
    assert [e["valid_until_ts"] for e in body["server_keys"]] == [6 * DAY]


def test_notary_returns_last_response_when_origin_is_offline():
    cached = parse_server_keys(published(now=0, valid_for=DAY), SERVER, 0)
    svc, _ = notary(FakeSource([cached], fail=True), now=2 * DAY)
    _, body = result_of(svc.handle_get(SERVER))  # minimum = now > valid_until
    assert [e["valid_until_ts"] for e in body["server_keys"]] == [DAY]


def test_notary_leaves_out_unknown_unreachable_servers_and_answers_for_itself():
    svc, _ = notary(FakeSource(fail=True))
    _, body = result_of(svc.handle_post({"server_keys": {"gone.example": {}, NOTARY: {}}}))
    assert [e["server_name"] for e in body["server_keys"]] == [NOTARY]
    verify_json(body["server_keys"][0], NOTARY, NK.verify_key)
    _, empty = result_of(svc.handle_post({"server_keys": {}}))
    assert empty == {"server_keys": []}


def test_notary_includes_older_response_for_a_requested_old_key():
    old_resp = parse_server_keys(published(now=0, keys=(OLD,)), SERVER, 0)
    new_resp = parse_server_keys(published(now=100, keys=(K1,)), SERVER, 100)
    svc, _ = notary(FakeSource([old_resp, new_resp]), now=200)
    _, body = result_of(svc.handle_post({"server_keys": {SERVER: {"ed25519:old": {}}}}))
    assert [set(e["verify_keys"]) for e in body["server_keys"]] == [{"ed25519:k1"}, {"ed25519:old"}]


# --- rotation ------------------------------------------------------------------------------
def test_rotation_moves_current_keys_to_old_keys():
    new, old = rotate_signing_keys(
        [K1], [OldKey(OLD.verify_key, 5)], now_ms=1_000, new_version="k9"
    )
    assert [k.key_id for k in new] == ["ed25519:k9"]
    assert {(o.verify_key.key_id, o.expired_ts) for o in old} == {
        ("ed25519:old", 5),
        ("ed25519:k1", 1_000),
    }
    with pytest.raises(KeyFormatError, match="already used"):
        rotate_signing_keys([K1], [], 0, new_version="k1")
    with pytest.raises(KeyFormatError, match="already used"):
        rotate_signing_keys([K1], [OldKey(OLD.verify_key, 5)], 0, new_version="old")


def test_old_keys_json_round_trip():
    old = [OldKey(OLD.verify_key, 5), OldKey(K2.verify_key, 6)]
    assert old_keys_from_json(old_keys_to_json(old)) == old
    for bad in (
        [],
        {"ed25519:x": {"key": K2.verify_key.encode()}},
        {"ed25519:x": {"key": "!!", "expired_ts": 1}},
    ):
        with pytest.raises(KeyFormatError):
            old_keys_from_json(bad)
    assert isinstance(old_keys_from_json(old_keys_to_json(old))[0].verify_key, VerifyKey)
