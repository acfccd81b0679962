"""The SRV steps of server-name resolution (server-server API "Resolving server names",
3.3/3.4 and 4/5): ``_matrix-fed._tcp`` then the deprecated ``_matrix._tcp``, only for a
hostname without a port and not an IP literal, with ``Host`` and the certificate for the
hostname (never the SRV target), RFC 2782 order, caching; then end to end against a DNS
server on loopback (``twisted.names``, a free UDP port) through ``federation.dns_server``:
a request to ``school.test`` reaches the HTTPS server the SRV record names, and the target's
addresses go through the address filter."""

from __future__ import annotations

from typing import Any

import pytest
from support.clocks import FakeClock
from support.deferreds import result_of
from twisted.internet import defer
from twisted.names import common, dns, error, server

from federation.errors import InvalidParam
from federation.transport.client import FederationHttpClient
from federation.transport.dns_srv import TwistedSrvLookup, parse_dns_server
from federation.transport.errors import AddressRefused
from federation.transport.ip_ranges import AddressFilter
from federation.transport.keyring import KeyRing, StaticPinnedKeys
from federation.transport.resolution import (
    ERROR_TTL_MS,
    SRV_FAILURE_TTL_MS,
    HttpsResponse,
    ServerResolver,
    SrvAnswer,
    SrvLookupFailed,
    SrvRecord,
    order_srv,
)
from federation.transport.tls import ClientTLSPolicy
from https_support import Env, MiniNode
from transport_support import key

ORIGIN = "origin.test"
OK = key("o1", 1)


class FakeSrv:
    def __init__(self, records: dict[str, Any] | None = None) -> None:
        self.records = dict(records or {})
        self.calls: list[str] = []

    async def lookup(self, name: str) -> SrvAnswer:
        self.calls.append(name)
        answer = self.records.get(name, SrvAnswer(()))
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeGetter:
    def __init__(self, routes=None):
        self.routes = dict(routes or {})

    async def get(self, url, *, timeout, max_bytes):
        return self.routes.get(url, HttpsResponse(404, {}, b"{}"))


def srv(*records, ttl=300):
    return SrvAnswer(tuple(SrvRecord(*r) for r in records), ttl)


def resolver(srv_records=None, routes=None, clock=None, **kw):
    lookup = FakeSrv(srv_records)
    r = ServerResolver(
        clock or FakeClock(), FakeGetter(routes), srv=lookup, random=lambda: 0.0, **kw
    )
    return r, lookup


# --- the steps, pure ------------------------------------------------------------------------
def test_matrix_fed_srv_after_a_failed_well_known():
    r, lookup = resolver({"_matrix-fed._tcp.school.test": srv((10, 5, 8449, "fed.host.test"))})
    res = result_of(r.resolve("school.test"))
    assert (res.host, res.port, res.host_header, res.tls_name, res.step) == (
        "fed.host.test",
        8449,
        "school.test",
        "school.test",
        "srv",
    )
    assert lookup.calls == ["_matrix-fed._tcp.school.test"]


def test_deprecated_matrix_srv_only_without_matrix_fed():
    r, lookup = resolver({"_matrix._tcp.school.test": srv((0, 0, 9000, "old.host.test"))})
    res = result_of(r.resolve("school.test"))
    assert (res.host, res.port, res.host_header, res.tls_name) == (
        "old.host.test",
        9000,
        "school.test",
        "school.test",
    )
    assert lookup.calls == ["_matrix-fed._tcp.school.test", "_matrix._tcp.school.test"]


def test_no_srv_record_falls_back_to_port_8448():
    r, lookup = resolver()
    res = result_of(r.resolve("school.test"))
    assert (res.host, res.port, res.host_header, res.step) == (
        "school.test",
        8448,
        "school.test",
        "default",
    )
    assert len(lookup.calls) == 2


@pytest.mark.parametrize("name", ["school.test:8448", "127.0.0.1", "[::1]", "10.0.0.1:443"])
def test_no_srv_lookup_for_an_explicit_port_or_an_ip_literal(name):
    r, lookup = resolver({"_matrix-fed._tcp.school.test": srv((0, 0, 1, "x.test"))})
    result_of(r.resolve(name))
    assert lookup.calls == []


def test_delegated_hostname_without_port_uses_its_srv():
    routes = {
        "https://school.test/.well-known/matrix/server": HttpsResponse(
            200, {}, b'{"m.server": "matrix.city.test"}'
        )
    }
    r, lookup = resolver(
        {"_matrix-fed._tcp.matrix.city.test": srv((0, 0, 8500, "node7.city.test"))}, routes
    )
    res = result_of(r.resolve("school.test"))
    assert (res.host, res.port, res.host_header, res.tls_name, res.step) == (
        "node7.city.test",
        8500,
        "matrix.city.test",
        "matrix.city.test",
        "well-known-srv",
    )
    assert lookup.calls == ["_matrix-fed._tcp.matrix.city.test"]


def test_delegated_hostname_with_port_skips_srv():
    routes = {
        "https://school.test/.well-known/matrix/server": HttpsResponse(
            200, {}, b'{"m.server": "matrix.city.test:443"}'
        )
    }
    r, lookup = resolver({}, routes)
    assert result_of(r.resolve("school.test")).port == 443 and lookup.calls == []


def test_several_records_in_rfc2782_order_become_fallbacks():
    answer = srv(
        (20, 0, 3, "c.test"),
        (10, 0, 1, "a.test"),
        (10, 0, 2, "b.test"),
        (5, 0, 9, "."),  # "decidedly not available": dropped
        (1, 0, 0, "bad-port.test"),
        (1, 0, 4, "not a host"),
    )
    r, _ = resolver({"_matrix-fed._tcp.school.test": answer})
    res = result_of(r.resolve("school.test"))
    assert (res.host, res.port) == ("a.test", 1)
    assert res.fallbacks == (("b.test", 2), ("c.test", 3))


def test_weights_pick_within_a_priority():
    recs = [SrvRecord(0, 1, 1, "light.test"), SrvRecord(0, 99, 2, "heavy.test")]
    assert order_srv(recs, lambda: 0.5)[0].target == "heavy.test"
    assert order_srv(recs, lambda: 0.0)[0].target == "light.test"
    assert [r.target for r in order_srv(recs, lambda: 0.999)] == ["heavy.test", "light.test"]


def test_answers_are_cached_for_their_ttl_and_absence_for_the_error_ttl():
    clock = FakeClock()
    r, lookup = resolver(
        {"_matrix-fed._tcp.a.test": srv((0, 0, 1, "t.test"), ttl=120)}, clock=clock
    )
    result_of(r.resolve("a.test"))
    result_of(r.resolve("a.test"))
    assert lookup.calls == ["_matrix-fed._tcp.a.test"]
    clock.advance(121_000)
    result_of(r.resolve("a.test"))
    assert len(lookup.calls) == 2
    result_of(r.resolve("b.test"))  # no records: both names asked, then cached
    result_of(r.resolve("b.test"))
    assert lookup.calls[2:] == ["_matrix-fed._tcp.b.test", "_matrix._tcp.b.test"]
    clock.advance(ERROR_TTL_MS)
    result_of(r.resolve("b.test"))
    assert len(lookup.calls) == 6


def test_a_failed_lookup_means_no_record_and_is_retried_sooner():
    clock = FakeClock()
    failing = {
        "_matrix-fed._tcp.a.test": SrvLookupFailed("timeout"),
        "_matrix._tcp.a.test": SrvLookupFailed("timeout"),
    }
    r, lookup = resolver(failing, clock=clock)
    assert result_of(r.resolve("a.test")).step == "default"
    clock.advance(SRV_FAILURE_TTL_MS)
    result_of(r.resolve("a.test"))
    assert len(lookup.calls) == 4


def test_without_an_srv_lookup_nothing_changes():
    r = ServerResolver(FakeClock(), FakeGetter())
    res = result_of(r.resolve("school.test"))
    assert (res.host, res.port, res.step) == ("school.test", 8448, "default")


def test_dns_server_setting():
    assert parse_dns_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_dns_server("[::1]:53") == ("::1", 53)
    for bad in ("localhost:53", "127.0.0.1", "1.2.3.4:0", ""):
        with pytest.raises(InvalidParam):
            parse_dns_server(bad)


# --- end to end: a DNS server on loopback ---------------------------------------------------
class Zone(common.ResolverBase):
    """An authoritative in-memory zone: SRV and A records by name; others NXDOMAIN."""

    def __init__(self, records: dict[bytes, list[Any]]) -> None:
        super().__init__()
        self.records = records
        self.asked: list[bytes] = []

    def _lookup(self, name, cls, type, timeout):
        self.asked.append(name)
        payloads = [p for p in self.records.get(name.lower(), []) if p.TYPE == type]
        if not payloads:
            return defer.fail(error.AuthoritativeDomainError(name))
        answers = [
            dns.RRHeader(name=name, type=type, payload=p, ttl=p.ttl or 300, auth=True)
            for p in payloads
        ]
        return defer.succeed((answers, [], []))


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def _dns_server(env: Env, zone: Zone) -> int:
    factory = server.DNSServerFactory(authorities=[zone])
    port = env.reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
    env._ports.append(port)
    return port.getHost().port


def _school(env: Env) -> tuple[MiniNode, int, str]:
    """An HTTPS federation server for ``school.test`` on 127.0.0.1, certificate for that
    name only (so a request that did not keep the name for TLS would fail)."""
    cert, key_ = env.self_signed("school", "school.test")
    node = MiniNode(env, key("srv", 9))
    port = node.start(cert, key_, "school.test")
    node.keyring = KeyRing(env.clock, [], pinned=StaticPinnedKeys({ORIGIN: [OK.verify_key]}))
    return node, port, cert


def _client(env: Env, dns_port: int, cert: str, address_filter: AddressFilter):
    resolver = ServerResolver(
        env.clock, None, srv=TwistedSrvLookup(env.reactor, f"127.0.0.1:{dns_port}")
    )
    client = FederationHttpClient(
        env.reactor,
        ORIGIN,
        OK,
        resolver,
        ClientTLSPolicy(cert),
        address_filter=address_filter,
    )
    env._clients.append(client)
    return client


def test_request_follows_the_srv_record_of_a_loopback_dns_server(env):
    node, port, cert = _school(env)
    zone = Zone(
        {
            b"_matrix-fed._tcp.school.test": [
                dns.Record_SRV(10, 0, port, b"localhost", ttl=300),
            ]
        }
    )
    dns_port = _dns_server(env, zone)
    client = _client(env, dns_port, cert, AddressFilter(whitelist=["127.0.0.0/8", "::1/128"]))
    status, body = env.run(client.request("school.test", "GET", "/echo"))
    assert status == 200
    # Host header and certificate: the server name, not the SRV target
    assert body["host"] == "school.test" and body["origin"] == ORIGIN
    assert b"_matrix-fed._tcp.school.test" in zone.asked


def test_deprecated_srv_name_on_the_dns_server(env):
    node, port, cert = _school(env)
    zone = Zone({b"_matrix._tcp.school.test": [dns.Record_SRV(0, 0, port, b"localhost")]})
    dns_port = _dns_server(env, zone)
    client = _client(env, dns_port, cert, AddressFilter(whitelist=["127.0.0.0/8", "::1/128"]))
    status, _ = env.run(client.request("school.test", "GET", "/echo"))
    assert status == 200
    assert zone.asked[:2] == [b"_matrix-fed._tcp.school.test", b"_matrix._tcp.school.test"]


def test_srv_target_addresses_pass_the_address_filter(env):
    node, port, cert = _school(env)
    zone = Zone({b"_matrix-fed._tcp.school.test": [dns.Record_SRV(0, 0, port, b"localhost")]})
    dns_port = _dns_server(env, zone)
    client = _client(env, dns_port, cert, AddressFilter())  # loopback refused
    with pytest.raises(AddressRefused):
        env.run(client.request("school.test", "GET", "/echo"))
    assert node.channels == set()  # no connection reached the server


def test_lookup_answers_no_record_for_an_unknown_name(env):
    dns_port = _dns_server(env, Zone({}))
    lookup = TwistedSrvLookup(env.reactor, f"127.0.0.1:{dns_port}")
    assert env.run(lookup.lookup("_matrix-fed._tcp.nowhere.test")) == SrvAnswer(())


def test_next_srv_target_when_the_first_refuses_the_connection(env):
    import socket

    node, port, cert = _school(env)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    zone = Zone(
        {
            b"_matrix-fed._tcp.school.test": [
                dns.Record_SRV(0, 0, dead, b"localhost"),
                dns.Record_SRV(10, 0, port, b"localhost"),
            ]
        }
    )
    dns_port = _dns_server(env, zone)
    client = _client(env, dns_port, cert, AddressFilter(whitelist=["127.0.0.0/8", "::1/128"]))
    status, body = env.run(client.request("school.test", "GET", "/echo"))
    assert status == 200 and body["host"] == "school.test"
