"""Outbound federation connects only to addresses the ``AddressFilter`` allows, checked after
name resolution (IP literals, DNS names, override targets, ``.well-known`` delegations and
the ``.well-known`` fetch itself) and before any connection, to the address that was checked.

Real HTTPS servers on 127.0.0.1 (``https_support``): each test shows the request would
succeed without the filter, so the refusal is the filter's doing; ``node.channels`` proves no
connection reached the server.
"""

from __future__ import annotations

import socket

import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock

from federation.transport.client import WellKnownGetter, _CheckedTCPEndpoint
from federation.transport.errors import AddressRefused, DestinationUnreachable
from federation.transport.ip_ranges import AddressFilter
from federation.transport.resolution import HttpsResponse, ServerResolver
from federation.transport.tls import ClientTLSPolicy
from https_support import Env
from test_transport_https import OK, ORIGIN, pinned_node

DEFAULT = AddressFilter()
LOOPBACK_OK = AddressFilter(whitelist=["127.0.0.0/8", "::1/128"])


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


@pytest.fixture
def served(env):
    """A trusted MiniNode on 127.0.0.1 and its certificate (valid for localhost and the IP)."""
    cert, key_ = env.self_signed("srv", "localhost")
    node, port = pinned_node(env, cert, key_)
    return node, port, cert


def refused(env, client, destination):
    with pytest.raises(AddressRefused) as exc:
        env.run(client.request(destination, "GET", "/echo"))
    return exc.value


@pytest.mark.parametrize("fmt", ["127.0.0.1:{port}", "localhost:{port}"])
def test_loopback_is_refused_before_connecting(env, served, fmt):
    node, port, cert = served
    destination = fmt.format(port=port)
    unfiltered = env.client(ORIGIN, OK, ca_file=cert)
    env.run(unfiltered.request(destination, "GET", "/echo"))  # 200, or 401: another name
    assert node.channels  # the server was reached
    node.channels.clear()
    client = env.client(ORIGIN, OK, ca_file=cert, address_filter=DEFAULT)
    err = refused(env, client, destination)
    assert isinstance(err, DestinationUnreachable)  # callers treat it as unreachable
    assert err.destination == destination
    assert "127.0.0.1" in err.message or "::1" in err.message  # detail for the log
    assert node.channels == set()  # no connection at all


def test_open_and_closed_ports_fail_the_same_way(env, served):
    node, port, cert = served
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    client = env.client(ORIGIN, OK, ca_file=cert, address_filter=DEFAULT)
    errors = [refused(env, client, f"127.0.0.1:{p}") for p in (port, closed_port)]
    assert [type(e) for e in errors] == [AddressRefused, AddressRefused]
    assert errors[0].message == errors[1].message  # the port is not even in it
    assert node.channels == set()


def test_override_target_on_loopback_is_refused(env, served):
    node, port, cert = served
    client = env.client(
        ORIGIN,
        OK,
        ca_file=cert,
        address_filter=DEFAULT,
        overrides={"school.test": f"127.0.0.1:{port}"},
    )
    refused(env, client, "school.test")
    assert node.channels == set()


def test_well_known_delegation_to_loopback_is_refused(env, served):
    node, port, cert = served

    class Delegating:
        async def get(self, url, *, timeout, max_bytes):
            return HttpsResponse(200, {}, b'{"m.server": "127.0.0.1:%d"}' % port)

    from federation.transport import tls
    from federation.transport.client import FederationHttpClient

    client = FederationHttpClient(
        env.reactor,
        ORIGIN,
        OK,
        ServerResolver(env.clock, Delegating()),
        tls.ClientTLSPolicy(cert),
        address_filter=DEFAULT,
    )
    env._clients.append(client)
    refused(env, client, "delegating.example")
    assert node.channels == set()


def test_whitelist_lets_loopback_federation_work(env, served):
    node, port, cert = served
    client = env.client(ORIGIN, OK, ca_file=cert, address_filter=LOOPBACK_OK)
    status, body = env.run(client.request(node.server_name, "GET", "/echo"))  # localhost:P
    assert status == 200 and body["origin"] == ORIGIN
    client = env.client(
        ORIGIN,
        OK,
        ca_file=cert,
        address_filter=LOOPBACK_OK,
        overrides={node.server_name: f"127.0.0.1:{port}"},
    )
    status, body = env.run(client.request(node.server_name, "GET", "/echo"))
    assert status == 200 and body["origin"] == ORIGIN


def test_well_known_fetch_to_loopback_is_refused(env, served):
    node, port, cert = served
    getter = WellKnownGetter(env.reactor, ClientTLSPolicy(cert), address_filter=DEFAULT)
    with pytest.raises(AddressRefused):
        env.run(
            getter.get(
                f"https://127.0.0.1:{port}/.well-known/matrix/server", timeout=10, max_bytes=1000
            )
        )
    with pytest.raises(AddressRefused):
        env.run(
            getter.get(
                f"https://localhost:{port}/.well-known/matrix/server", timeout=10, max_bytes=1000
            )
        )
    assert node.channels == set()
    allowed = WellKnownGetter(env.reactor, ClientTLSPolicy(cert), address_filter=LOOPBACK_OK)
    resp = env.run(
        allowed.get(
            f"https://localhost:{port}/.well-known/matrix/server", timeout=10, max_bytes=1000
        )
    )
    assert resp.status == 401  # reached MiniNode (no X-Matrix on a plain GET)


# --- the resolved addresses are the connected addresses ---------------------------------
class _Answers:
    """A name resolver answering from a fixed list, counting look-ups."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.lookups = 0

    def resolveHostName(
        self, receiver, hostName, portNumber=0, addressTypes=None, transportSemantics="TCP"
    ):
        self.lookups += 1
        receiver.resolutionBegan(None)
        for host in self.hosts:
            cls = IPv6Address if ":" in host else IPv4Address
            receiver.addressResolved(cls("TCP", host, portNumber))
        receiver.resolutionComplete()


def _connect(hosts):
    reactor = MemoryReactorClock()
    answers = _Answers(hosts)
    reactor.nameResolver = answers
    d = _CheckedTCPEndpoint(
        reactor, "rebind.example", 8448, 10.0, DEFAULT, "rebind.example"
    ).connect(Factory.forProtocol(Protocol))
    reactor.advance(1)  # HostnameEndpoint starts its attempts one by one
    reactor.advance(1)
    return reactor, answers, d


def test_a_name_is_resolved_once_and_only_allowed_addresses_are_connected_to():
    reactor, answers, _ = _connect(
        ["127.0.0.1", "93.184.216.34", "::1", "2606:4700::1111", "10.0.0.1"]
    )
    assert answers.lookups == 1
    assert sorted(c[0] for c in reactor.tcpClients) == ["2606:4700::1111", "93.184.216.34"]


def test_a_name_with_only_refused_addresses_fails_without_connecting():
    reactor, answers, d = _connect(["127.0.0.1", "::ffff:10.0.0.1"])
    assert reactor.tcpClients == []
    failures = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(AddressRefused)
