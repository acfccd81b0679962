"""The gateway side of roster enforcement (gateway/roster_enforcement.py): acknowledgements
from signed refreshes, catching up from the database, push hints to members."""

from __future__ import annotations

import json
import os
import sys

from twisted.internet import defer
from twisted.web.http_headers import Headers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.clocks import FakeClock

from federation.roster import RosterState
from federation.transport.xmatrix import sign_request
from gateway.roster_enforcement import GatewayRoster, RosterAcks
from node.federation.roster_policy import RosterPolicy
from roster_test_support import GATEWAY, ROGUE, SCHOOL_A, SCHOOL_B, T0_MS, City


class Raw:
    def __init__(self, uri: str, auth: str | None) -> None:
        self.uri = uri.encode()
        self.requestHeaders = Headers()
        if auth is not None:
            self.requestHeaders.addRawHeader(b"authorization", auth.encode())


class Req:
    def __init__(self, uri: str, auth: str | None) -> None:
        self.method = "GET"
        self.raw = Raw(uri, auth)


def policy_for(city: City, *servers: str) -> RosterPolicy:
    doc = city.publish(city.servers(*servers))
    state = RosterState(city.roster_key.verify_key, GATEWAY)
    state.restore(doc)
    return RosterPolicy(state)


def signed_req(city: City, origin: str, since: int, *, key=None, destination=GATEWAY):
    uri = f"/_parta/v1/roster?since={since}"
    return Req(uri, sign_request("GET", uri, origin, destination, key or city.keys[origin]))


def test_signed_refresh_is_recorded_as_the_acknowledged_version(tmp_path):
    city = City()
    policy = policy_for(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    acks = RosterAcks(str(tmp_path / "acks.json"), FakeClock(T0_MS))
    assert acks.note_request(signed_req(city, SCHOOL_A, 7), 7, policy, GATEWAY) == SCHOOL_A
    assert acks.acked(SCHOOL_A) == (7, T0_MS)
    # Not recorded: unsigned, signed by a key the roster does not pin, a non-member,
    # a request meant for another server, a signature over another query.
    assert acks.note_request(Req("/_parta/v1/roster?since=9", None), 9, policy, GATEWAY) is None
    assert (
        acks.note_request(signed_req(city, SCHOOL_B, 9, key=city.keys[ROGUE]), 9, policy, GATEWAY)
        is None
    )
    assert acks.note_request(signed_req(city, ROGUE, 9), 9, policy, GATEWAY) is None
    assert (
        acks.note_request(
            signed_req(city, SCHOOL_B, 9, destination="other.test"), 9, policy, GATEWAY
        )
        is None
    )
    forged = signed_req(city, SCHOOL_B, 1)
    forged.raw.uri = b"/_parta/v1/roster?since=9"
    assert acks.note_request(forged, 9, policy, GATEWAY) is None
    assert acks.acked(SCHOOL_B) is None and acks.acked(ROGUE) is None


def test_acks_are_saved_and_served_as_school_status(tmp_path):
    path = str(tmp_path / "acks.json")
    acks = RosterAcks(path, FakeClock(T0_MS))
    acks.record(SCHOOL_A, 3, T0_MS + 5)
    acks.flush()
    with open(path) as fh:
        assert json.load(fh) == {SCHOOL_A: {"version": 3, "ts": T0_MS + 5}}
    again = RosterAcks(path, FakeClock(T0_MS))
    out = []
    defer.ensureDeferred(again.status_of([SCHOOL_A, SCHOOL_B])).addCallback(out.append)
    (status,) = out
    assert set(status) == {SCHOOL_A}
    assert status[SCHOOL_A].roster_version_acked == 3
    assert status[SCHOOL_A].last_contact_ts == T0_MS + 5
    assert status[SCHOOL_A].outbound_queue_depth is None


class FakeRosterService:
    def __init__(self, city: City) -> None:
        self.city = city

    async def since(self, version: int, limit=None):
        return self.city.after(version)


class FakeClient:
    def __init__(self, down=()) -> None:
        self.sent: list[tuple[str, str, str, dict]] = []
        self.down = set(down)

    async def request(self, destination, method, path, json_body=None, query=None, timeout=None):
        self.sent.append((destination, method, path, json_body))
        if destination in self.down:
            raise ConnectionRefusedError(destination)
        return 200, {}


class FakeGw:
    def __init__(self, city: City) -> None:
        self.roster = FakeRosterService(city)
        self.clock = FakeClock(T0_MS + 10_000)
        self.server_name = GATEWAY


class Fctx:
    def __init__(self, client) -> None:
        self.client = client


def wait(d):
    out = []
    d.addBoth(out.append)
    assert out, "did not finish"
    return out[0]


def test_gateway_catches_up_from_its_database_and_hints_members():
    city = City()
    policy = policy_for(city, GATEWAY, SCHOOL_A, SCHOOL_B)
    client = FakeClient(down={SCHOOL_B})
    enforcer = GatewayRoster(FakeGw(city), Fctx(client), policy, policy.state, interval_s=5)
    wait(enforcer.sync())
    assert client.sent == []  # nothing new, no hints
    # A version published by the CLI (enrolment of ROGUE's server) is picked up ...
    city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B, ROGUE), issued_ts=T0_MS + 1)
    wait(enforcer.sync())
    assert policy.version == 2 and policy.allow_inbound(ROGUE)
    # ... and every other member is told (the hint carries the version, nothing else).
    results = wait(enforcer.hints_sent[-1])
    assert sorted(d for d, *_ in client.sent) == [SCHOOL_A, SCHOOL_B, ROGUE]
    assert {(m, p, json.dumps(b)) for _, m, p, b in client.sent} == {
        ("PUT", "/_parta/v1/roster_hint", '{"version": 2}')
    }
    assert results == {SCHOOL_A: "200", ROGUE: "200", SCHOOL_B: "ConnectionRefusedError"}
    # A revocation: the revoked server is no longer hinted (nor allowed).
    client.sent.clear()
    city.publish(city.servers(GATEWAY, SCHOOL_A, SCHOOL_B), issued_ts=T0_MS + 2)
    wait(enforcer.sync())
    wait(enforcer.hints_sent[-1])
    assert policy.version == 3 and not policy.allow_outbound(ROGUE)
    assert sorted(d for d, *_ in client.sent) == [SCHOOL_A, SCHOOL_B]


def test_gateway_refuses_a_database_version_that_does_not_chain():
    city = City()
    policy = policy_for(city, GATEWAY, SCHOOL_A)
    enforcer = GatewayRoster(FakeGw(city), Fctx(FakeClient()), policy, policy.state, interval_s=5)
    forged = city.publish(
        city.servers(GATEWAY, SCHOOL_A, ROGUE),
        issued_ts=T0_MS + 1,
        prev=city.publish(city.servers(GATEWAY), issued_ts=T0_MS),
    )
    city.docs[:] = [city.docs[0], forged]  # version 3 right after version 1
    wait(enforcer.sync())
    assert policy.version == 1 and not policy.allow_inbound(ROGUE)
