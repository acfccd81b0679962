"""HTTP(S) requests to push gateways (Push Gateway API ``POST /_matrix/push/v1/notify``,
https://spec.matrix.org/v1.16/push-gateway-api/#post_matrixpushv1notify).

A pusher's URL comes from a user, so the node must not become a way to reach services on
its own machine or private network: every connection goes through the same address filter
as outbound federation (``federation/transport/ip_ranges.py``, applied to each resolved
address right before connecting, ``checked_connect``), with the ``push.ip_range_*``
settings.  Requests time out (``timeout_s``) and at most ``MAX_RESPONSE_BYTES`` of an
answer are read; nothing blocks the reactor.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, cast

import orjson
from twisted.internet import defer, protocol
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

# The filtered TCP endpoint of outbound federation (resolve once, check every address).
from federation.transport.checked_connect import checked_tcp_endpoint
from federation.transport.ip_ranges import AddressFilter

MAX_RESPONSE_BYTES = 64 * 1024


@implementer(IAgentEndpointFactory)
class _GatewayEndpoints:
    def __init__(self, reactor: Any, address_filter: AddressFilter, timeout_s: float) -> None:
        self._reactor = reactor
        self._filter = address_filter
        self._timeout = timeout_s

    def endpointForURI(self, uri: Any) -> Any:
        host = uri.host.decode("ascii")
        if host.startswith("["):
            host = host[1:-1]
        tcp = checked_tcp_endpoint(
            self._reactor,
            host,
            uri.port,
            connect_timeout=self._timeout,
            address_filter=self._filter,
            client="push_gateway",
        )
        if uri.scheme == b"https":
            return wrapClientTLS(optionsForClientTLS(host), tcp)
        return tcp


class _Collect(protocol.Protocol):
    def __init__(self, done: defer.Deferred) -> None:
        self.done = done
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        if self.size >= MAX_RESPONSE_BYTES:
            return
        self.parts.append(data[: MAX_RESPONSE_BYTES - self.size])
        self.size += len(data)
        if self.size >= MAX_RESPONSE_BYTES and self.transport is not None:
            # A response body's transport is a producer proxy: stop the rest of the body.
            cast(Any, self.transport).stopProducing()

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(b"".join(self.parts))


class GatewayClient:
    def __init__(
        self, reactor: Any, address_filter: AddressFilter, *, timeout_s: float = 15.0
    ) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        pool = HTTPConnectionPool(reactor)
        pool.maxPersistentPerHost = 4
        self.agent = Agent.usingEndpointFactory(
            reactor, _GatewayEndpoints(reactor, address_filter, timeout_s), pool=pool
        )

    async def post(self, url: str, body: dict) -> tuple[int, Any]:
        """(HTTP status, parsed JSON answer or None).  Raises on connection failures,
        refused addresses and timeouts."""
        d = self.agent.request(
            b"POST",
            url.encode("utf-8"),
            Headers({b"Content-Type": [b"application/json"], b"User-Agent": [b"Parta"]}),
            FileBodyProducer(BytesIO(orjson.dumps(body))),
        )
        d.addTimeout(self.timeout_s, self.reactor)
        response = await d
        done: defer.Deferred = defer.Deferred()
        response.deliverBody(_Collect(done))
        done.addTimeout(self.timeout_s, self.reactor)
        raw = await done
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        return response.code, parsed
