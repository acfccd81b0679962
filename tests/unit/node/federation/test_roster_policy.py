"""RosterPolicy: membership, pinned keys, classes, start-up from the data dir, the notary
source for roster members, room audiences."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.clocks import FakeClock
from support.deferreds import result_of

from federation.errors import Forbidden
from federation.roster import RosterState
from federation.transport.key_responses import parse_server_keys
from federation.transport.key_server import build_server_keys
from federation.transport.keyring import KeyNotFound, KeyRing
from node.federation.audience import AUDIENCE_EVENT, check_audience, room_audience
from node.federation.policy import (
    AllowAllPolicy,
    PinnedKeysFromPolicy,
    ServerNotAllowed,
    require_inbound,
)
from node.federation.roster_policy import (
    RosterNotarySource,
    RosterPolicy,
    RosterStartupError,
    policy_from_config,
    refusal,
)
from roster_test_support import (
    DAY_MS,
    GATEWAY,
    MINISTRY,
    ROGUE,
    SCHOOL_A,
    SCHOOL_B,
    T0_MS,
    City,
    FakeConfig,
)


def bound_policy(city: City, *names: str) -> tuple[RosterPolicy, RosterState]:
    doc = city.publish(city.servers(*names))
    state = RosterState(city.roster_key.verify_key, GATEWAY)
    state.accept(doc, doc["issued_ts"])
    return RosterPolicy(state), state


# --- membership ----------------------------------------------------------------------------


def test_members_in_and_out_and_others_refused():
    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    for server in (GATEWAY, SCHOOL_A, SCHOOL_B):
        assert policy.allow_inbound(server) and policy.allow_outbound(server)
    for server in (ROGUE, "a.school.test:8448", "A.SCHOOL.TEST"):
        assert not policy.allow_inbound(server)
        assert not policy.allow_outbound(server)


def test_refused_origin_gets_403_naming_the_roster():
    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A)
    with pytest.raises(ServerNotAllowed) as exc:
        require_inbound(policy, ROGUE)
    assert exc.value.errcode == "M_FORBIDDEN" and exc.value.http_status == 403
    assert exc.value.message == f"server {ROGUE} is not in the city roster"
    assert refusal(policy, ROGUE).message == f"server {ROGUE} is not in the city roster"
    assert "does not federate" in refusal(AllowAllPolicy(), ROGUE).message  # no roster


def test_unbound_policy_is_open_until_bound_and_never_reopens():
    city = City()
    policy = RosterPolicy()
    assert policy.allow_inbound(ROGUE) and policy.allow_outbound(ROGUE)
    assert policy.pinned_keys(ROGUE) is None and policy.server_class(SCHOOL_A) is None
    doc = city.publish(city.servers(GATEWAY, SCHOOL_A))
    state = RosterState(city.roster_key.verify_key, GATEWAY)
    state.restore(doc)
    policy.bind(state)
    assert not policy.allow_inbound(ROGUE) and policy.allow_inbound(SCHOOL_A)
    with pytest.raises(RuntimeError):
        policy.bind(RosterState(city.roster_key.verify_key, GATEWAY))


def test_empty_state_admits_nobody():
    city = City()
    policy = RosterPolicy(RosterState(city.roster_key.verify_key, GATEWAY))
    assert not policy.allow_inbound(SCHOOL_A) and not policy.allow_outbound(GATEWAY)
    assert policy.pinned_keys(SCHOOL_A) == {}


def test_revocation_takes_effect_on_accept_and_is_persisted(tmp_path):
    city = City()
    policy, state = bound_policy(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    saved, seen = [], []
    policy.persist = saved.append
    policy.add_listener(lambda old, new: seen.append((old.version, new.version)))
    doc = city.publish(city.servers(GATEWAY, SCHOOL_A))
    state.accept(doc, doc["issued_ts"])
    assert not policy.allow_inbound(SCHOOL_B) and policy.pinned_keys(SCHOOL_B) == {}
    assert saved == [doc] and seen == [(1, 2)]


def test_classes_from_the_roster():
    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A, MINISTRY)
    assert policy.server_class(GATEWAY) == "city"
    assert policy.server_class(SCHOOL_A) == "school"
    assert policy.server_class(MINISTRY) == "external"
    assert policy.server_class(ROGUE) is None


# --- keys ----------------------------------------------------------------------------------


def test_pinned_keys_current_without_expiry_old_until_expired_ts():
    city = City()
    old_key = city.keys[ROGUE]  # any other key: A's former key
    servers = city.servers(GATEWAY, SCHOOL_B)
    servers[SCHOOL_A] = city.entry(
        SCHOOL_A,
        "a",
        old={old_key.key_id: {"key": old_key.verify_key.encode(), "expired_ts": T0_MS - 5}},
    )
    doc = city.publish(servers)
    state = RosterState(city.roster_key.verify_key, GATEWAY)
    state.accept(doc, doc["issued_ts"])
    pins = RosterPolicy(state).pinned_keys(SCHOOL_A)
    current = city.keys[SCHOOL_A]
    assert pins[current.key_id].verify_key.public_bytes == current.verify_key.public_bytes
    assert pins[current.key_id].valid_until_ts is None
    assert pins[old_key.key_id].valid_until_ts == T0_MS - 5
    assert set(pins) == {current.key_id, old_key.key_id}


class RecordingFetcher:
    name = "direct"
    is_direct = True

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def fetch(self, server_name, key_ids, minimum_valid_until_ts):
        self.asked.append(server_name)
        return []


def test_key_ring_takes_member_keys_only_from_the_roster_and_never_fetches():
    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A)
    fetcher = RecordingFetcher()
    ring = KeyRing(FakeClock(T0_MS), [fetcher], pinned=PinnedKeysFromPolicy(policy))
    key = city.keys[SCHOOL_A]
    got = result_of(ring.get_verify_key(SCHOOL_A, key.key_id))
    assert got.public_bytes == key.verify_key.public_bytes
    # A key ID the roster does not list for a member: refused, not fetched.
    with pytest.raises(KeyNotFound):
        result_of(ring.get_verify_key(SCHOOL_A, "ed25519:other"))
    # A non-member: refused without any fetch (no direct request, no notary).
    with pytest.raises(KeyNotFound):
        result_of(ring.get_verify_key(ROGUE, city.keys[ROGUE].key_id))
    assert fetcher.asked == []


def test_open_policy_leaves_keys_to_the_fetchers():
    fetcher = RecordingFetcher()
    ring = KeyRing(FakeClock(T0_MS), [fetcher], pinned=PinnedKeysFromPolicy(RosterPolicy()))
    with pytest.raises(KeyNotFound):
        result_of(ring.get_verify_key(ROGUE, "ed25519:x"))
    assert fetcher.asked == [ROGUE]


# --- the notary ------------------------------------------------------------------------------


class FakeKeySource:
    def __init__(self, responses: dict) -> None:
        self.responses = responses
        self.refreshed: list[str] = []

    def stored_responses(self, server):
        return list(self.responses.get(server, []))

    async def refresh_direct(self, server, minimum):
        self.refreshed.append(server)
        stored = self.responses.get(server)
        return stored[-1] if stored else None


def keys_response(server: str, *signing_keys, old=()) -> object:
    body = build_server_keys(server, list(signing_keys), list(old), T0_MS + DAY_MS)
    return parse_server_keys(body, server, T0_MS)


def test_notary_vouches_only_for_members_with_roster_keys():
    from federation.keys import SigningKey

    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    good = keys_response(SCHOOL_A, city.keys[SCHOOL_A])
    other = keys_response(SCHOOL_B, SigningKey.generate("zzz"))  # not B's roster key
    rogue = keys_response(ROGUE, city.keys[ROGUE])
    inner = FakeKeySource({SCHOOL_A: [good], SCHOOL_B: [other], ROGUE: [rogue]})
    source = RosterNotarySource(inner, policy)
    assert source.stored_responses(SCHOOL_A) == [good]
    assert source.stored_responses(SCHOOL_B) == []
    assert source.stored_responses(ROGUE) == []
    assert result_of(source.refresh_direct(SCHOOL_A, T0_MS)) is good
    assert result_of(source.refresh_direct(SCHOOL_B, T0_MS)) is None
    assert result_of(source.refresh_direct(ROGUE, T0_MS)) is None
    assert inner.refreshed == [SCHOOL_A, SCHOOL_B]  # never asks a non-member


def test_notary_end_to_end_signs_member_keys_and_omits_others():
    from federation.transport.key_server import KeyServer, NotaryService

    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A)
    inner = FakeKeySource(
        {
            SCHOOL_A: [keys_response(SCHOOL_A, city.keys[SCHOOL_A])],
            ROGUE: [keys_response(ROGUE, city.keys[ROGUE])],
        }
    )
    key_server = KeyServer(GATEWAY, [city.keys[GATEWAY]], FakeClock(T0_MS))
    notary = NotaryService(key_server, RosterNotarySource(inner, policy), FakeClock(T0_MS))
    status, body = result_of(notary.handle_post({"server_keys": {SCHOOL_A: {}, ROGUE: {}}}))
    assert status == 200
    (entry,) = body["server_keys"]
    assert entry["server_name"] == SCHOOL_A
    assert set(entry["signatures"]) == {SCHOOL_A, GATEWAY}  # its own + the gateway's


# --- start-up --------------------------------------------------------------------------------


def test_not_enrolled_auto_is_open_required_refuses(tmp_path):
    policy = policy_from_config(FakeConfig(str(tmp_path)))
    assert isinstance(policy, RosterPolicy) and not policy.bound
    with pytest.raises(RosterStartupError, match="has not enrolled"):
        policy_from_config(FakeConfig(str(tmp_path), roster="required"))
    # A gateway binds its own roster later.
    gw = policy_from_config(
        FakeConfig(str(tmp_path), roster="required", extensions={"gateway": {}})
    )
    assert not gw.bound
    with pytest.raises(RosterStartupError, match="must be one of"):
        policy_from_config(FakeConfig(str(tmp_path), roster="sometimes"))
    with pytest.raises(RosterStartupError, match="positive"):
        policy_from_config(FakeConfig(str(tmp_path), refresh=0))


def test_enrolled_node_restores_even_an_expired_roster(tmp_path):
    city = City(validity_ms=1000)
    doc = city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B))
    city.enrol_files(str(tmp_path), doc, gateway_url="https://city.test:8443")
    for mode in ("auto", "required"):
        policy = policy_from_config(FakeConfig(str(tmp_path), roster=mode))
        assert policy.bound and policy.version == 1
        assert policy.is_stale(doc["valid_until_ts"] + 1)  # expired ...
        assert policy.allow_inbound(SCHOOL_B)  # ... and still enforced
        assert not policy.allow_inbound(ROGUE)
        assert policy.gateway_url == "https://city.test:8443"


def test_enrolled_node_with_roster_off_is_open(tmp_path):
    city = City()
    city.enrol_files(str(tmp_path), city.publish(city.servers(GATEWAY, SCHOOL_A)))
    policy = policy_from_config(FakeConfig(str(tmp_path), roster="off"))
    assert isinstance(policy, AllowAllPolicy) and policy.allow_inbound(ROGUE)


def test_tampered_roster_file_fails_closed(tmp_path):
    city = City()
    doc = city.publish(city.servers(GATEWAY, SCHOOL_A))
    doc["servers"][ROGUE] = city.entry(ROGUE, "r")  # keeps the old signature
    city.enrol_files(str(tmp_path), doc)
    policy = policy_from_config(FakeConfig(str(tmp_path)))
    assert policy.bound and policy.version == 0
    assert not policy.allow_inbound(ROGUE) and not policy.allow_inbound(SCHOOL_A)


def test_accepted_update_rewrites_roster_json(tmp_path):
    city = City()
    v1 = city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B))
    city.enrol_files(str(tmp_path), v1)
    policy = policy_from_config(FakeConfig(str(tmp_path)))
    v2 = city.publish(city.servers(GATEWAY, SCHOOL_A))
    policy.state.accept(v2, v2["issued_ts"])
    with open(tmp_path / "roster.json") as fh:
        assert json.load(fh) == v2
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []
    again = policy_from_config(FakeConfig(str(tmp_path)))
    assert again.version == 2 and not again.allow_inbound(SCHOOL_B)


# --- room audience ---------------------------------------------------------------------------


class Ev:
    def __init__(self, content) -> None:
        self.content = content


def test_room_audience_default_explicit_and_malformed():
    assert room_audience({}) == ("school", "city")
    key = (AUDIENCE_EVENT, "")
    assert room_audience({key: Ev({"classes": ["external", "school", "city"]})}) == (
        "school",
        "city",
        "external",
    )
    assert room_audience({key: Ev({"classes": ["external"]})}) == ("external",)
    assert room_audience({key: Ev({"classes": "external"})}) == ("school", "city")
    assert room_audience({key: Ev({"classes": [1]})}) == ("school", "city")
    assert room_audience({key: Ev({"classes": ["nobody"]})}) == ()


def test_external_servers_only_in_rooms_that_admit_them():
    city = City()
    policy, _ = bound_policy(city, GATEWAY, SCHOOL_A, SCHOOL_B, MINISTRY)
    school_room: dict = {}
    open_room = {(AUDIENCE_EVENT, ""): Ev({"classes": ["school", "city", "external"]})}
    check_audience(policy, school_room, SCHOOL_B, local_server=SCHOOL_A)
    check_audience(policy, school_room, GATEWAY, local_server=SCHOOL_A)
    with pytest.raises(Forbidden) as exc:
        check_audience(policy, school_room, MINISTRY, local_server=SCHOOL_A)
    assert exc.value.http_status == 403 and "external" in exc.value.message
    check_audience(policy, open_room, MINISTRY, local_server=SCHOOL_A)
    with pytest.raises(Forbidden, match="not in the city roster"):
        check_audience(policy, open_room, ROGUE, local_server=SCHOOL_A)
    # The resident's own users, and nodes without a roster, are not checked.
    check_audience(
        policy, {(AUDIENCE_EVENT, ""): Ev({"classes": []})}, SCHOOL_A, local_server=SCHOOL_A
    )
    check_audience(RosterPolicy(), school_room, MINISTRY, local_server=SCHOOL_A)
    check_audience(AllowAllPolicy(), school_room, MINISTRY, local_server=SCHOOL_A)
