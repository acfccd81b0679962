"""The roster refresher with ``task.Clock``: periodic and hinted refreshes, acknowledgement,
every refused update (other key, modified document, rollback, fork, broken chain, gap,
expired) keeping the last good roster, an unreachable gateway, staleness and metrics."""

from __future__ import annotations

import os
import sys

import pytest
from twisted.internet import defer, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from federation.roster import RosterState, generate_roster_key
from node import metrics
from node.federation.roster_policy import RosterPolicy
from node.federation.roster_refresh import RosterRefresher, register_hint_route, watch_metrics
from roster_test_support import GATEWAY, ROGUE, SCHOOL_A, SCHOOL_B, T0_MS, City

INTERVAL = 5.0


class FakeGateway:
    """Answers ``?since=N`` from a list of documents (or whatever a test puts there)."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.asked: list[int] = []
        self.serve = None  # a function since -> versions, overriding the city
        self.down = False
        self.page_size = 500
        self.pending: defer.Deferred | None = None  # set to hold the next answer

    def fetch(self, since: int):
        self.asked.append(since)
        if self.down:
            return defer.fail(ConnectionRefusedError("gateway down"))
        docs = self.serve(since) if self.serve else self.city.after(since)
        body = {
            "versions": docs[: self.page_size],
            "limited": len(docs) > self.page_size,
            "latest_version": max([d["version"] for d in self.city.docs] or [0]),
        }
        if self.pending is not None:
            d, self.pending = self.pending, None
            d.addCallback(lambda _: body)
            return d
        return defer.succeed(body)


class Node:
    """An enrolled node's policy + refresher on a ``task.Clock``."""

    def __init__(self, city: City, *servers: str) -> None:
        self.city = city
        self.reactor = task.Clock()
        doc = city.publish(city.servers(*servers))
        self.reactor.advance(doc["issued_ts"] / 1000)
        state = RosterState(city.roster_key.verify_key, GATEWAY)
        state.restore(doc)
        self.saved: list[dict] = []
        self.policy = RosterPolicy(state, persist=self.saved.append, gateway_url="http://gateway")
        self.gateway = FakeGateway(city)
        self.refresher = RosterRefresher(
            self.policy,
            self.gateway.fetch,
            reactor=self.reactor,
            now_ms=self.now_ms,
            interval_s=INTERVAL,
        )

    def now_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def refresh(self) -> str:
        out = []
        self.refresher.refresh().addBoth(out.append)
        assert out, "refresh did not finish"
        return out[0]


def rejected(reason: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("parta_roster_updates_rejected_total", {"reason": reason})
        or 0.0
    )


def sample(name: str) -> float:
    return metrics.REGISTRY.get_sample_value(name)


# --- the good path -----------------------------------------------------------------------


def test_periodic_refresh_picks_up_a_revocation_within_one_interval():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    node.refresher.start(now=True)
    assert node.gateway.asked == [1]  # first refresh at start: nothing new
    city.publish(city.servers(GATEWAY, SCHOOL_A), issued_ts=node.now_ms())  # revoke B
    assert node.policy.allow_inbound(SCHOOL_B)  # not yet
    node.reactor.advance(INTERVAL)  # one interval later
    assert not node.policy.allow_inbound(SCHOOL_B) and not node.policy.allow_outbound(SCHOOL_B)
    assert node.policy.version == 2 and node.saved[-1]["version"] == 2
    # The refresh that got version 2 is followed by one acknowledging it (since=2).
    assert node.gateway.asked == [1, 1, 2]
    node.reactor.advance(INTERVAL)
    assert node.gateway.asked == [1, 1, 2, 2]
    node.refresher.stop()
    node.reactor.advance(INTERVAL * 3)
    assert node.gateway.asked == [1, 1, 2, 2]


def test_catches_up_over_several_versions_and_pages():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A)
    for _ in range(4):
        city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B), issued_ts=node.now_ms())
    node.gateway.page_size = 2
    assert node.refresh() == "updated"
    assert node.policy.version == 5 and node.policy.allow_inbound(SCHOOL_B)
    assert node.gateway.asked == [1, 3, 5]  # two pages, then the acknowledgement


def test_enrolment_of_a_new_server_is_admitted_after_refresh():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A)
    assert not node.policy.allow_inbound(ROGUE)
    city.publish(city.servers(GATEWAY, SCHOOL_A, ROGUE), issued_ts=node.now_ms())
    assert node.refresh() == "updated"
    assert node.policy.allow_inbound(ROGUE)
    assert (
        node.policy.pinned_keys(ROGUE)[city.keys[ROGUE].key_id].verify_key.public_bytes
        == city.keys[ROGUE].verify_key.public_bytes
    )


def test_hint_refreshes_at_once_and_coalesces():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    node.refresher.start(now=False)
    city.publish(city.servers(GATEWAY, SCHOOL_A), issued_ts=node.now_ms())
    hold = defer.Deferred()
    node.gateway.pending = hold
    first = node.refresher.hint()
    second = node.refresher.hint()  # while the first is in flight
    third = node.refresher.hint()
    assert first is second is third
    assert node.gateway.asked == [1]
    hold.callback(None)
    # One more refresh ran after the in-flight one (two hints folded into one).
    assert node.policy.version == 2 and not node.policy.allow_inbound(SCHOOL_B)
    assert node.gateway.asked == [1, 2, 2]
    outcome = []
    first.addCallback(outcome.append)
    assert outcome == ["unchanged"]


class Routes:
    def __init__(self) -> None:
        self.handlers = {}

    def add(self, method, template, handler):
        self.handlers[(method, template)] = handler


def call_hint(handler, origin):
    out = []
    defer.ensureDeferred(handler(None, origin)).addBoth(out.append)
    return out[0]


def test_hint_route_only_from_the_gateway_and_content_ignored():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    routes = Routes()
    register_hint_route(routes, node.policy, node.refresher)
    handler = routes.handlers[("PUT", "/_parta/v1/roster_hint")]
    failure = call_hint(handler, SCHOOL_B)
    assert failure.value.errcode == "M_FORBIDDEN" and node.gateway.asked == []
    assert call_hint(handler, GATEWAY) == (200, {})
    assert node.gateway.asked == [1]
    # An unenrolled node does not take hints.
    routes2 = Routes()
    register_hint_route(routes2, RosterPolicy(), None)
    failure = call_hint(routes2.handlers[("PUT", "/_parta/v1/roster_hint")], GATEWAY)
    assert failure.value.http_status == 403


# --- refused updates: the last good roster stays ---------------------------------------------


def attack_setup():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    v2 = city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B), issued_ts=node.now_ms())
    assert node.refresh() == "updated" and node.policy.version == 2
    node.saved.clear()
    return city, node, v2


def assert_kept(node, version=2):
    assert node.policy.version == version
    assert node.policy.allow_inbound(SCHOOL_A) and node.policy.allow_inbound(SCHOOL_B)
    assert not node.policy.allow_inbound(ROGUE)
    assert node.saved == []


@pytest.mark.parametrize(
    "attack", ["other_key", "modified", "rollback", "chain", "fork", "gap", "expired", "garbage"]
)
def test_refused_updates_keep_the_last_good_roster(attack):
    city, node, v2 = attack_setup()
    now = node.now_ms()
    with_rogue = city.servers(GATEWAY, SCHOOL_A, SCHOOL_B, ROGUE)
    if attack == "other_key":  # a version 3 signed by someone else's roster key
        doc = city.publish(with_rogue, issued_ts=now, key=generate_roster_key(1), prev=v2)
        docs, reason = [doc], "signature"
    elif attack == "modified":  # the real next version, edited after signing
        doc = city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B), issued_ts=now)
        doc = {**doc, "servers": {**doc["servers"], ROGUE: with_rogue[ROGUE]}}
        docs, reason = [doc], "signature"
    elif attack == "rollback":  # version 1 again (properly signed)
        docs, reason = [city.docs[0]], "rollback"
    elif attack == "chain":  # version 3 whose prev_sha256 is not version 2's hash
        doc = city.publish(with_rogue, issued_ts=now, prev=city.docs[0])
        doc = city.publish(with_rogue, issued_ts=now, prev=doc)  # version 3
        docs, reason = [doc], "chain"
    elif attack == "fork":  # another version 2 ... and its successor
        fork2 = city.publish(with_rogue, issued_ts=now, prev=city.docs[0])
        fork3 = city.publish(with_rogue, issued_ts=now, prev=fork2)
        docs, reason = [fork2, fork3], "fork"
    elif attack == "gap":  # version 4 without version 3
        v3 = city.publish(with_rogue, issued_ts=now, prev=v2)
        docs, reason = [city.publish(with_rogue, issued_ts=now, prev=v3)], "gap"
    elif attack == "expired":  # a correct version 3 that has already expired
        doc = city.publish(with_rogue, issued_ts=now - city.validity_ms - 10, prev=v2)
        docs, reason = [doc], "expired"
    else:  # not a roster at all
        docs, reason = [{"version": 3, "servers": {ROGUE: {}}}], "signer"
    node.gateway.serve = lambda since: docs
    before = rejected(reason)
    assert node.refresh() == "rejected"
    assert rejected(reason) == before + 1
    assert_kept(node)
    # The next honest answer is accepted again.
    node.gateway.serve = None
    city.docs[:] = [d for d in city.docs if d["version"] <= 2 and d in (city.docs[0], v2)]
    city.publish(city.servers(GATEWAY, SCHOOL_A), issued_ts=node.now_ms(), prev=v2)
    assert node.refresh() == "updated" and node.policy.version == 3


def test_unreachable_gateway_keeps_enforcing_and_turns_stale():
    city = City(validity_ms=60_000)
    node = Node(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    watch_metrics(node.policy, type("C", (), {"time_ms": staticmethod(node.now_ms)})())
    node.refresher.start(now=False)
    node.gateway.down = True
    failures = sample("parta_roster_refresh_failures_total")
    assert sample("parta_roster_stale") == 0.0 and sample("parta_roster_version") == 1.0
    assert sample("parta_roster_enforced") == 1.0
    node.reactor.advance(INTERVAL)
    assert node.refresher.last_outcome == "unreachable"
    assert sample("parta_roster_refresh_failures_total") == failures + 1
    node.reactor.advance(61)  # past valid_until_ts
    assert sample("parta_roster_stale") == 1.0
    # Never fail open, never cut members off.
    assert node.policy.allow_inbound(SCHOOL_B) and not node.policy.allow_inbound(ROGUE)
    assert node.policy.version == 1
    # The gateway returns with a fresh version: no longer stale.
    node.gateway.down = False
    city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B), issued_ts=node.now_ms())
    node.reactor.advance(INTERVAL)
    assert node.policy.version == 2 and sample("parta_roster_stale") == 0.0
    node.refresher.stop()


def test_bad_answer_shape_counts_as_unreachable():
    city = City()
    node = Node(city, GATEWAY, SCHOOL_A)
    node.refresher._fetch = lambda since: defer.succeed({"no": "versions"})
    assert node.refresh() == "unreachable" and node.policy.version == 1


def test_refresher_needs_a_bound_policy():
    with pytest.raises(ValueError):
        RosterRefresher(RosterPolicy(), lambda s: None, reactor=task.Clock(), now_ms=lambda: T0_MS)
