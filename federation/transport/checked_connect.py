"""Outbound connections only to addresses the filter allows (``ip_ranges.AddressFilter``).

A name is resolved once through a filtering resolver and the connection goes to exactly the
addresses that were checked, so DNS rebinding cannot get past the check; IP literals and
override targets are checked directly.  Used by ``client.FederationHttpClient`` for every
federation request and the ``.well-known`` fetch (docs/security.md, "Outbound federation"),
and, through ``checked_tcp_endpoint``, by the node's other clients of user-given URLs (push
gateways, URL previews), each with its own filter.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet import error as terror
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import (
    IHostnameResolver,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.python.failure import Failure
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from .errors import (
    AddressRefused,
)
from .ip_ranges import AddressFilter
from .resolution import ServerResolver
from .server_names import is_ip_literal
from .tls import ClientTLSPolicy

# The federation client's logger: these lines belong to its requests (the other clients'
# lines say which client they are, ``event=<client>_address_refused``).
log = logging.getLogger("federation.transport.client")


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    """Passes on only the resolved addresses the filter allows; notes the others."""

    def __init__(self, inner: Any, address_filter: AddressFilter, refused: list[str]) -> None:
        self._inner = inner
        self._filter = address_filter
        self._refused = refused

    def resolutionBegan(self, resolution: Any) -> None:
        self._inner.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:
        host = getattr(address, "host", None)
        reason = (
            self._filter.refusal(address.host)
            if isinstance(address, (IPv4Address, IPv6Address))
            else "not an IP address"
        )
        if reason is None:
            self._inner.addressResolved(address)
        else:
            self._refused.append(f"{host} ({reason})")

    def resolutionComplete(self) -> None:
        self._inner.resolutionComplete()


@implementer(IHostnameResolver)
class _FilteringResolver:
    def __init__(self, inner: Any, address_filter: AddressFilter, refused: list[str]) -> None:
        self._inner = inner
        self._filter = address_filter
        self._refused = refused

    def resolveHostName(
        self,
        receiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        return self._inner.resolveHostName(
            _FilteringReceiver(receiver, self._filter, self._refused),
            hostName,
            portNumber,
            addressTypes,
            transportSemantics,
        )


@implementer(IReactorPluggableNameResolver)
class _FilteringReactor:
    """The reactor as ``HostnameEndpoint`` sees it: its name resolver drops the addresses
    the filter refuses, so the endpoint connects only to checked addresses (it connects to
    the addresses it was handed, it never resolves the name again)."""

    def __init__(self, reactor: Any, address_filter: AddressFilter) -> None:
        self._reactor = reactor
        self.refused: list[str] = []
        self.nameResolver = _FilteringResolver(reactor.nameResolver, address_filter, self.refused)

    def installNameResolver(self, resolver: Any) -> Any:
        raise NotImplementedError("the filtering resolver is fixed")

    def __getattr__(self, name: str) -> Any:  # connectTCP, callLater, seconds...
        return getattr(self._reactor, name)


@implementer(IStreamClientEndpoint)
class _CheckedTCPEndpoint:
    """TCP to ``host``:``port`` at an address the filter allows, else ``AddressRefused``
    before any connection (no filter: plain endpoints, for library use and tests).
    ``client`` names the connecting client in the log lines."""

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        connect_timeout: float,
        address_filter: AddressFilter | None,
        destination: str,
        client: str = "federation",
    ) -> None:
        self._reactor = reactor
        self._host = host
        self._port = port
        self._timeout = connect_timeout
        self._filter = address_filter
        self._destination = destination
        self._client = client

    def _refused(self, detail: str) -> Failure:
        log.warning(
            "event=%s_address_refused destination=%s host=%s port=%d refused=%s",
            self._client,
            self._destination,
            self._host,
            self._port,
            detail,
        )
        return Failure(
            AddressRefused(self._destination, f"{self._host} is in a refused IP range ({detail})")
        )

    def connect(self, protocol_factory: Any) -> defer.Deferred[Any]:
        host, port, timeout = self._host, self._port, self._timeout
        if is_ip_literal(host):
            if self._filter is not None:
                reason = self._filter.refusal(host)
                if reason is not None:
                    return defer.fail(self._refused(reason))
            cls = TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint
            return cls(self._reactor, host, port, timeout=timeout).connect(protocol_factory)
        if self._filter is None:
            return HostnameEndpoint(self._reactor, host, port, timeout=timeout).connect(
                protocol_factory
            )
        reactor = _FilteringReactor(self._reactor, self._filter)
        d = HostnameEndpoint(reactor, host, port, timeout=timeout).connect(protocol_factory)

        def failed(failure: Failure) -> Failure:
            # Every address was refused: HostnameEndpoint reports "no results".
            if reactor.refused and failure.check(terror.DNSLookupError):
                return self._refused(", ".join(reactor.refused))
            return failure

        def connected(protocol: Any) -> Any:
            if reactor.refused:
                log.info(
                    "event=%s_address_skipped destination=%s host=%s refused=%s",
                    self._client,
                    self._destination,
                    host,
                    ", ".join(reactor.refused),
                )
            return protocol

        return d.addCallbacks(connected, failed)


def checked_tcp_endpoint(
    reactor: Any,
    host: str,
    port: int,
    *,
    connect_timeout: float,
    address_filter: AddressFilter,
    client: str,
) -> IStreamClientEndpoint:
    """TCP to ``host``:``port`` for an outbound client of user-given URLs: the name is
    resolved once and only the addresses ``address_filter`` allows are connected to (so DNS
    rebinding cannot get past it), else the connection fails with ``AddressRefused``
    before any connection is made.  ``client`` (``push_gateway``, ``url_preview``...)
    names the client in the log lines: ``event=<client>_address_refused``."""
    return _CheckedTCPEndpoint(
        reactor, host, port, connect_timeout, address_filter, host, client=client
    )


class ConnectingClient(Protocol):
    """What the resolving endpoint needs of ``client.FederationHttpClient``."""

    resolver: ServerResolver
    reactor: Any
    connect_timeout: float
    address_filter: AddressFilter | None
    tls: ClientTLSPolicy


@implementer(IStreamClientEndpoint)
class _ResolvingEndpoint:
    """Connects to wherever ``server_name`` resolves, then TLS for the resolved name."""

    def __init__(self, client: "ConnectingClient", server_name: str) -> None:
        self._client = client
        self._server_name = server_name

    def connect(self, protocol_factory: Any) -> defer.Deferred[Any]:
        return defer.ensureDeferred(self._connect(protocol_factory))

    async def _connect(self, protocol_factory: Any) -> Any:
        c = self._client
        res = await c.resolver.resolve(self._server_name)
        targets = [(res.host, res.port), *res.fallbacks]
        for i, (host, port) in enumerate(targets):
            tcp = _CheckedTCPEndpoint(
                c.reactor, host, port, c.connect_timeout, c.address_filter, self._server_name
            )
            tls = wrapClientTLS(c.tls.creator_for(res.tls_name), tcp, clock=c.reactor)
            try:
                return await tls.connect(protocol_factory)
            except Exception as exc:
                # Several SRV targets: the next one when this one cannot be reached
                # (RFC 2782); the last failure is the request's.
                if i == len(targets) - 1:
                    raise
                log.info(
                    "event=federation_srv_target_failed destination=%s target=%s:%d error=%s",
                    self._server_name,
                    host,
                    port,
                    type(exc).__name__,
                )
        raise AssertionError("unreachable: targets is never empty")


@implementer(IAgentEndpointFactory)
class _FederationEndpointFactory:
    def __init__(self, client: "ConnectingClient") -> None:
        self._client = client

    def endpointForURI(self, uri: Any) -> _ResolvingEndpoint:
        return _ResolvingEndpoint(self._client, bytes.fromhex(uri.host.decode()).decode())


@implementer(IAgentEndpointFactory)
class _HttpsEndpointFactory:
    """Plain ``https://host[:port]`` with our TLS policy and an explicit clock."""

    def __init__(
        self,
        reactor: Any,
        tls: ClientTLSPolicy,
        connect_timeout: float,
        address_filter: AddressFilter | None,
    ) -> None:
        self._reactor = reactor
        self._tls = tls
        self._timeout = connect_timeout
        self._filter = address_filter

    def endpointForURI(self, uri: Any) -> Any:
        if uri.scheme != b"https":
            raise ValueError(f"only https URLs are fetched, not {uri.scheme!r}")
        host = uri.host.decode("ascii")
        if host.startswith("["):
            host = host[1:-1]
        tcp = _CheckedTCPEndpoint(self._reactor, host, uri.port, self._timeout, self._filter, host)
        return wrapClientTLS(self._tls.creator_for(host), tcp, clock=self._reactor)
