"""What the node's clients of user-given URLs share (push gateways, URL previews).

``CheckedWebEndpoints`` is an ``IAgentEndpointFactory`` for ``twisted.web.client.Agent``:
every connection goes through ``checked_connect.checked_tcp_endpoint`` (the name resolved
once, only addresses the filter allows connected to), with TLS for ``https``.
``BodyHead`` keeps the first ``limit`` bytes of a response body and stops the download
there, so a hostile server cannot make the node read more than that.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet import defer, protocol
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from .checked_connect import checked_tcp_endpoint
from .ip_ranges import AddressFilter


@implementer(IAgentEndpointFactory)
class CheckedWebEndpoints:
    def __init__(
        self, reactor: Any, address_filter: AddressFilter, timeout_s: float, client: str
    ) -> None:
        self._reactor = reactor
        self._filter = address_filter
        self._timeout = timeout_s
        self._client = client  # names the client in refusal log lines

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
            client=self._client,
        )
        if uri.scheme == b"https":
            return wrapClientTLS(optionsForClientTLS(host), tcp)
        return tcp


class BodyHead(protocol.Protocol):
    """Keeps the first ``limit`` bytes of a body (``done`` fires with them) and stops the
    download there."""

    def __init__(self, limit: int) -> None:
        self.done: defer.Deferred[bytes] = defer.Deferred()
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        if self.size >= self.limit:
            return
        self.parts.append(data[: self.limit - self.size])
        self.size += len(data)
        if self.size >= self.limit and self.transport is not None:
            # A response body's transport is a producer proxy: stop the rest of the body.
            cast(Any, self.transport).stopProducing()
            self.finish()

    def connectionLost(self, reason: Any = None) -> None:
        self.finish()

    def finish(self) -> None:
        """Fire ``done`` with what arrived so far (once)."""
        if not self.done.called:
            self.done.callback(b"".join(self.parts))
