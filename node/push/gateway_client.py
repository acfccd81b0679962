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
from typing import Any

import orjson
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers

from federation.transport.ip_ranges import AddressFilter
from federation.transport.web_client import BodyHead, CheckedWebEndpoints

MAX_RESPONSE_BYTES = 64 * 1024


class GatewayClient:
    def __init__(
        self, reactor: Any, address_filter: AddressFilter, *, timeout_s: float = 15.0
    ) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        pool = HTTPConnectionPool(reactor)
        pool.maxPersistentPerHost = 4
        self.agent = Agent.usingEndpointFactory(
            reactor,
            CheckedWebEndpoints(reactor, address_filter, timeout_s, "push_gateway"),
            pool=pool,
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
        head = BodyHead(MAX_RESPONSE_BYTES)
        response.deliverBody(head)
        head.done.addTimeout(self.timeout_s, self.reactor)
        raw = await head.done
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        return response.code, parsed
