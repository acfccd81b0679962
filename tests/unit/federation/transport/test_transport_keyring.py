"""The key ring: fetching, validating and caching remote keys with their validity
(server-server API "Retrieving server keys"; rooms "Signing key validity period")."""

from __future__ import annotations

import pytest
from support.clocks import FakeClock
from support.deferreds import pending, result_of
from twisted.internet import defer

from federation.errors import Unauthorized
from federation.events.builder import build_create_event
from federation.events.checks import SignatureKeyUnknown, check_received_event
from federation.room_versions import V12
from federation.signing import sign_json
from federation.transport.key_responses import SEVEN_DAYS_MS, parse_server_keys
from federation.transport.key_server import KeyServer, OldKey, build_server_keys
from federation.transport.keyring import (
    DirectKeyFetcher,
    KeyNotFound,
    KeyRing,
    NotaryKeyFetcher,
    PinnedKey,
    StaticPinnedKeys,
)
from transport_support import key

A = "school-a.example"
B = "school-b.example"
NOTARY = "notary.example"
KA, KA2, KB, KN = key("a1", 1), key("a2", 2), key("b1", 3), key("n1", 4)
DAY = 24 * 3600 * 1000
T0 = 1_700_000_000_000


def response(server=A, keys=(KA,), old=(), valid_until=T0 + DAY, signer=None):
    body = build_server_keys(server, list(keys), old, valid_until)
    if signer is not None:  # re-sign with other keys only
        body.pop("signatures")
        for k in signer:
            sign_json(body, server, k)
    return body


class ScriptedFetcher:
    """Returns the next scripted result per call (a body dict, an exception, a Deferred)."""

    is_direct = True

    def __init__(self, clock, *results, name="direct"):
        self.clock = clock
        self.results = list(results)
        self.calls = []
        self.name = name

    async def fetch(self, server, key_ids, minimum):
        self.calls.append((server, tuple(key_ids), minimum))
        result = self.results.pop(0) if self.results else ConnectionError("no more")
        if isinstance(result, defer.Deferred):
            result = await result
        if isinstance(result, Exception):
            raise result
        return [parse_server_keys(result, server, self.clock.time_ms())]


def ring(*results, clock=None, **kw):
    clock = clock or FakeClock(T0)
    fetcher = ScriptedFetcher(clock, *results)
    return KeyRing(clock, [fetcher], **kw), fetcher, clock


# --- fetching and caching ------------------------------------------------------------------
def test_fetch_once_then_cached():
    kr, f, _ = ring(response())
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert kr.get_verify_key_cached(A, "ed25519:a1") == KA.verify_key
    assert len(f.calls) == 1


def test_unknown_server_is_none_in_the_sync_path():
    kr, f, _ = ring()
    assert kr.get_verify_key_cached(A, "ed25519:a1") is None
    assert f.calls == []


def test_response_for_another_server_or_not_self_signed_is_refused():
    kr, f, _ = ring(response(server=B, keys=(KB,)))
    with pytest.raises(KeyNotFound, match="could not be obtained"):
        result_of(kr.get_verify_key(A, "ed25519:b1"))
    kr, f, _ = ring(response(keys=(KA,), signer=(KA2,)))
    with pytest.raises(KeyNotFound):
        result_of(kr.get_verify_key(A, "ed25519:a1"))
    assert kr.get_verify_key_cached(A, "ed25519:a1") is None


def test_key_not_found_is_401():
    kr, _, _ = ring(response())
    with pytest.raises(Unauthorized) as exc:
        result_of(kr.get_verify_key(A, "ed25519:nope"))
    assert exc.value.http_status == 401 and exc.value.errcode == "M_UNAUTHORIZED"


# --- validity ------------------------------------------------------------------------------
def test_key_expires_at_valid_until_and_is_refetched():
    kr, f, clock = ring(response(valid_until=T0 + DAY), response(valid_until=T0 + 3 * DAY))
    result_of(kr.get_verify_key(A, "ed25519:a1"))
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 + DAY) == KA.verify_key
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 + DAY + 1) is None
    clock.advance(DAY + 1)
    assert kr.get_verify_key_cached(A, "ed25519:a1") is None  # now past validity
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert len(f.calls) == 2 and f.calls[1][2] == clock.now
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 + 3 * DAY) == KA.verify_key


def test_valid_until_is_capped_at_seven_days_after_receipt():
    kr, f, clock = ring(response(valid_until=T0 + 365 * DAY))
    result_of(kr.get_verify_key(A, "ed25519:a1"))
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 + SEVEN_DAYS_MS) == KA.verify_key
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 + SEVEN_DAYS_MS + 1) is None


def test_minimum_valid_until_refetches_and_fails_when_still_too_short():
    kr, f, clock = ring(response(valid_until=T0 + DAY), response(valid_until=T0 + DAY))
    result_of(kr.get_verify_key(A, "ed25519:a1"))
    with pytest.raises(KeyNotFound, match="not valid until"):
        result_of(kr.get_verify_key(A, "ed25519:a1", minimum_valid_until_ts=T0 + 2 * DAY))
    assert [c[2] for c in f.calls] == [T0, T0 + 2 * DAY]


def test_old_keys_verify_old_events_only():
    old = [OldKey(KA.verify_key, T0 - DAY)]
    kr, f, clock = ring(response(keys=(KA2,), old=old))
    result_of(kr.get_verify_key(A, "ed25519:a2"))
    # An event from before the rotation, signed with the old key: valid.
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 - DAY) == KA.verify_key
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 - DAY - 5) == KA.verify_key
    # The old key cannot sign anything now (e.g. a request).
    assert kr.get_verify_key_cached(A, "ed25519:a1") is None


def test_latest_validity_wins_when_a_key_is_listed_twice():
    kr, _, clock = ring()
    kr.add_server_keys(parse_server_keys(response(valid_until=T0 + 2 * DAY), A, T0))
    kr.add_server_keys(parse_server_keys(response(valid_until=T0 + DAY), A, T0))
    assert kr.get_verify_key_cached(A, "ed25519:a1", T0 + 2 * DAY) == KA.verify_key


# --- negative cache and sharing ------------------------------------------------------------
def test_negative_results_are_cached_briefly():
    kr, f, clock = ring(response(), response(), response(keys=(KA, KA2)), negative_ttl_ms=30_000)
    for _ in range(3):
        with pytest.raises(KeyNotFound):
            result_of(kr.get_verify_key(A, "ed25519:a2"))
    assert len(f.calls) == 1
    clock.advance(30_001)
    with pytest.raises(KeyNotFound):
        result_of(kr.get_verify_key(A, "ed25519:a2"))
    assert len(f.calls) == 2
    clock.advance(30_001)
    assert result_of(kr.get_verify_key(A, "ed25519:a2")) == KA2.verify_key
    assert len(f.calls) == 3


def test_negative_cache_is_bounded():
    kr, f, clock = ring(*[ConnectionError("down")] * 5)
    kr.MAX_NEGATIVE_ENTRIES = 3
    for i in range(5):
        with pytest.raises(KeyNotFound):
            result_of(kr.get_verify_key(f"s{i}.example", "ed25519:x"))
    assert len(kr._negative) <= 3
    assert len(f.calls) == 5


def test_key_source_names_the_fetcher():
    kr, _, _ = ring(response())
    result_of(kr.get_verify_key(A, "ed25519:a1"))
    assert kr.key_source(A, "ed25519:a1") == "direct"
    assert kr.key_source(A, "ed25519:zz") is None


def test_concurrent_lookups_share_one_fetch():
    gate = defer.Deferred()
    kr, f, _ = ring(gate)
    d1 = pending(kr.get_verify_key(A, "ed25519:a1"))
    d2 = pending(kr.get_verify_key(A, "ed25519:a1"))
    d3 = pending(kr.get_verify_key(A, "ed25519:a2"))
    assert not d1.called and not d2.called and not d3.called
    assert len(f.calls) == 1
    gate.callback(response())
    assert result_of(d1) == KA.verify_key and result_of(d2) == KA.verify_key
    with pytest.raises(KeyNotFound):
        result_of(d3)
    assert len(f.calls) == 1


def test_failed_shared_fetch_releases_all_waiters():
    gate = defer.Deferred()
    kr, f, _ = ring(gate)
    ds = [pending(kr.get_verify_key(A, "ed25519:a1")) for _ in range(3)]
    gate.callback(ConnectionError("refused"))
    for d in ds:
        with pytest.raises(KeyNotFound):
            result_of(d)


def test_fetchers_are_tried_in_order_until_the_key_is_found():
    clock = FakeClock(T0)
    first = ScriptedFetcher(clock, ConnectionError("down"), name="direct")
    second = ScriptedFetcher(clock, response(), name="backup")
    kr = KeyRing(clock, [first, second])
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert len(first.calls) == 1 and len(second.calls) == 1


# --- notary fetcher ------------------------------------------------------------------------
class FakeRequester:
    def __init__(self, status, body):
        self.status, self.body = status, body
        self.calls = []

    async def request(self, destination, method, path, json_body=None, query=None, timeout=None):
        self.calls.append((destination, method, path, json_body))
        return self.status, self.body


def notary_answer(*entries):
    out = []
    for e in entries:
        e = dict(e)
        sign_json(e, NOTARY, KN)
        out.append(e)
    return {"server_keys": out}


def notary_ring(body, status=200, notary_keys=(KN.verify_key,)):
    clock = FakeClock(T0)
    http = FakeRequester(status, body)
    kr = KeyRing(clock, [NotaryKeyFetcher(http, clock, NOTARY, notary_keys)])
    return kr, http


def test_notary_answer_with_both_signatures_is_accepted():
    kr, http = notary_ring(notary_answer(response()))
    assert result_of(kr.get_verify_key(A, "ed25519:a1", T0 + 5)) == KA.verify_key
    assert http.calls == [
        (
            NOTARY,
            "POST",
            "/_matrix/key/v2/query",
            {"server_keys": {A: {"ed25519:a1": {"minimum_valid_until_ts": T0 + 5}}}},
        )
    ]


@pytest.mark.parametrize(
    "make_body",
    [
        lambda: {"server_keys": [response()]},  # no notary signature
        lambda: notary_answer(response(signer=(KA2,))),  # not self-signed
        lambda: notary_answer(response(server=B, keys=(KB,))),  # another server
        lambda: {"server_keys": [sign_json(response(), NOTARY, KA2)]},  # wrong notary key
        lambda: {"server_keys": "nope"},
        lambda: [],
    ],
)
def test_notary_answers_without_both_valid_signatures_are_refused(make_body):
    kr, _ = notary_ring(make_body())
    with pytest.raises(KeyNotFound):
        result_of(kr.get_verify_key(A, "ed25519:a1"))
    assert kr.get_verify_key_cached(A, "ed25519:a1") is None


def test_notary_fetcher_needs_a_key_and_reports_http_errors():
    with pytest.raises(ValueError, match="at least one key"):
        NotaryKeyFetcher(FakeRequester(200, {}), FakeClock(), NOTARY, [])
    kr, _ = notary_ring({"errcode": "M_UNKNOWN"}, status=500)
    with pytest.raises(KeyNotFound):
        result_of(kr.get_verify_key(A, "ed25519:a1"))


def test_direct_fetcher_requests_key_server_path():
    clock = FakeClock(T0)
    http = FakeRequester(200, response())
    kr = KeyRing(clock, [DirectKeyFetcher(http, clock)])
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert http.calls == [(A, "GET", "/_matrix/key/v2/server", None)]
    assert [r.server_name for r in kr.stored_responses(A)] == [A]


# --- pinned and local keys -----------------------------------------------------------------
def test_pinned_keys_are_used_without_fetching_and_others_refused():
    pins = StaticPinnedKeys({A: [KA.verify_key, PinnedKey(KA2.verify_key, T0 + 10)]})
    kr, f, clock = ring(response(keys=(KA, KB)), pinned=pins)
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert kr.get_verify_key_cached(A, "ed25519:a2", T0 + 10) == KA2.verify_key
    assert kr.get_verify_key_cached(A, "ed25519:a2", T0 + 11) is None
    with pytest.raises(KeyNotFound, match="pinned"):
        result_of(kr.get_verify_key(A, "ed25519:b1"))
    # Even keys learned some other way are ignored while the server is pinned.
    kr.add_server_keys(parse_server_keys(response(keys=(KB,)), A, T0))
    assert kr.get_verify_key_cached(A, "ed25519:b1") is None
    assert f.calls == []
    # Unpinned servers are fetched as usual.
    pins.remove_server(A)
    assert kr.get_verify_key_cached(A, "ed25519:b1") == KB.verify_key


def test_own_keys_come_from_the_key_server():
    clock = FakeClock(T0)
    local = KeyServer(B, [KB], clock, [OldKey(KA.verify_key, T0 - 1)])
    f = ScriptedFetcher(clock)
    kr = KeyRing(clock, [f], local=local)
    assert result_of(kr.get_verify_key(B, "ed25519:b1")) == KB.verify_key
    assert kr.get_verify_key_cached(B, "ed25519:a1", T0 - 1) == KA.verify_key
    with pytest.raises(KeyNotFound, match="our own"):
        result_of(kr.get_verify_key(B, "ed25519:a1"))
    assert f.calls == []


# --- persistence ---------------------------------------------------------------------------
class MemoryStore:
    def __init__(self, saved=None):
        self.saved = dict(saved or {})
        self.loads = []

    async def load_server_keys(self, server):
        self.loads.append(server)
        return list(self.saved.get(server, []))

    async def save_server_keys(self, server, body, received_at):
        self.saved.setdefault(server, []).append((body, received_at))


def test_store_is_consulted_before_fetching_and_filled_after():
    store = MemoryStore({A: [(response(), T0)]})
    kr, f, _ = ring(response(server=B, keys=(KB,)), store=store)
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert f.calls == []
    assert result_of(kr.get_verify_key(B, "ed25519:b1")) == KB.verify_key
    assert [s for s in store.saved] == [A, B]
    assert store.saved[B][0][1] == T0


def test_tampered_stored_response_is_ignored():
    body = response()
    body["valid_until_ts"] += 1
    kr, f, _ = ring(response(), store=MemoryStore({A: [(body, T0)]}))
    assert result_of(kr.get_verify_key(A, "ed25519:a1")) == KA.verify_key
    assert len(f.calls) == 1


# --- events --------------------------------------------------------------------------------
def make_event(ts):
    return build_create_event(
        V12,
        server_name=A,
        signing_key=KA,
        creator="@t:" + A,
        content={"room_version": "12"},
        origin_server_ts=ts,
    )


def test_ensure_event_keys_then_check_received_event():
    kr, f, _ = ring(response(valid_until=T0 + DAY))
    pdu = make_event(T0 + 100).pdu
    with pytest.raises(SignatureKeyUnknown):
        check_received_event(pdu, V12, kr.event_key_lookup(pdu))
    result_of(kr.ensure_event_keys([pdu, make_event(T0 + 200).pdu]))
    assert len(f.calls) == 1
    event = check_received_event(pdu, V12, kr.event_key_lookup(pdu))
    assert event.sender == "@t:" + A


def test_event_after_key_validity_is_not_verifiable():
    kr, f, _ = ring(response(valid_until=T0 + DAY), response(valid_until=T0 + DAY))
    late = make_event(T0 + DAY + 1).pdu
    result_of(kr.ensure_event_keys([late]))  # refetch attempted, still too short
    with pytest.raises(SignatureKeyUnknown):
        check_received_event(late, V12, kr.event_key_lookup(late))
    early = make_event(T0 + DAY).pdu
    check_received_event(early, V12, kr.event_key_lookup(early))
