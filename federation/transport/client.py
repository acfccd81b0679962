"""Outbound federation HTTPS (spec: server-server API "API standards", "TLS", "Request
Authentication", "Resolving server names").

``FederationHttpClient.request(destination, method, path, json_body=None, query=None,
timeout=None) -> (status, json)``:

1. resolve ``destination`` (``resolution.ServerResolver``: override map, IP literal, explicit
   port, ``.well-known``, port 8448);
2. sign ``{method, uri, origin, destination, content?}`` and send ``Authorization: X-Matrix``
   (``uri`` = the exact request target sent, so the receiver can check it);
3. check every address the resolved host stands for against the ``AddressFilter``
   (``ip_ranges``: ``federation.ip_range_blacklist`` minus ``ip_range_whitelist``) and
   connect only to an allowed one -- to the very address that was checked, so a DNS answer
   that changes between check and connection (DNS rebinding) cannot get around it; a
   destination with no allowed address fails with ``AddressRefused`` and no connection;
4. connect over TLS to the resolved host/port, verifying the certificate for the resolved
   ``tls_name`` (SNI for DNS names) with the ``tls.ClientTLSPolicy`` (CA file / system store,
   or the loud ``insecure_skip_tls_verify`` switch); ``Host`` header from the resolution;
5. connections are pooled (``HTTPConnectionPool``, persistent, ``max_persistent_per_host``)
   per destination server name;
6. the response must be a JSON object (``InvalidResponse`` otherwise, naming the destination
   and status); a non-2xx status is returned as is (``request_ok`` raises ``RemoteError``).
   Failures: ``DestinationUnreachable``, ``AddressRefused``, ``TLSFailure``,
   ``RequestTimedOut`` (whole request, including resolution, ``.well-known`` and reading the
   body, bounded by ``timeout``, default 60 s; each TCP connection attempt by
   ``connect_timeout``, default 10 s).  Their messages carry the details for the node's log;
   callers answering a client should not pass them on (they would tell a prober which
   ports are open).

``get_raw`` does the same for non-JSON bodies (federation media downloads).

``WellKnownGetter`` is the plain HTTPS GET (no signature, no redirects followed) that the
resolver uses for ``https://<hostname>/.well-known/matrix/server`` (same address check).

All Twisted objects get the reactor passed explicitly (TLS write aggregation, the pool, the
endpoints): nothing here imports the global reactor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote, urlencode, urlsplit

from twisted.internet import defer
from twisted.internet import error as terror
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from ..canonical_json import encode_canonical_json, parse_json
from ..errors import MatrixError
from ..json_limits import MAX_SERVER_JSON_DEPTH
from ..keys import SigningKey
from .checked_connect import (
    _CheckedTCPEndpoint,  # noqa: F401 - the address-check tests import it from here
    _FederationEndpointFactory,
    _HttpsEndpointFactory,
)
from .errors import (
    AddressRefused,
    DestinationUnreachable,
    FederationRequestError,
    InvalidResponse,
    RemoteError,
    RequestTimedOut,
    TLSFailure,
)
from .ip_ranges import AddressFilter
from .resolution import HttpsResponse, Resolution, ServerResolver
from .server_names import parse_server_name
from .tls import ClientTLSPolicy
from .xmatrix import sign_request, sign_request_body

log = logging.getLogger(__name__)

USER_AGENT = b"Parta/0.1 (federation)"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_SCHEME = b"matrix-federation"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, Sequence[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None


def encode_path(template: str, *args: str) -> str:
    """``encode_path("/_matrix/federation/v1/send/{}", txn_id)``: each arg percent-encoded
    as one path segment."""
    return template.format(*(quote(str(a), safe="") for a in args))


def build_target(path: str, query: Mapping[str, Any] | None) -> str:
    """The request target: ``path`` (already percent-encoded) plus the encoded ``query``.

    Query values may be str/int/bool or lists of them (repeated parameters)."""
    if not path.startswith("/") or not path.isascii() or any(c in path for c in " #\r\n\t"):
        raise ValueError(
            f"invalid request path {path!r}: must be a percent-encoded ASCII path starting with '/'"
        )
    if not query:
        return path

    def enc(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    pairs = []
    for k, v in query.items():
        for item in v if isinstance(v, (list, tuple)) else [v]:
            pairs.append((k, enc(item)))
    return path + ("&" if "?" in path else "?") + urlencode(pairs, quote_via=quote)


# --- Twisted plumbing ----------------------------------------------------------------------


@implementer(IBodyProducer)
class _BytesProducer:
    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:
        consumer.write(self._body)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class ResponseTooLarge(Exception):
    pass


class _BodyCollector(Protocol):
    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0
        self.deferred: defer.Deferred[bytes] = defer.Deferred(self._cancel)

    # The transport of a response body is a push producer (twisted.web's
    # TransportProxyProducer); Protocol declares it only as an ITransport.
    def _cancel(self, _d: defer.Deferred[bytes]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        if self.deferred.called:
            return
        self._size += len(data)
        if self._size > self._max:
            self.deferred.errback(ResponseTooLarge(f"response larger than {self._max} bytes"))
            self.transport.stopProducing()  # type: ignore[union-attr]  # a producer, see above
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.deferred.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.deferred.callback(b"".join(self._chunks))
        else:
            self.deferred.errback(reason)


def read_body(response: Any, max_bytes: int) -> defer.Deferred[bytes]:
    """The body of a received ``twisted.web`` response, at most ``max_bytes``: a larger one
    fails with ``ResponseTooLarge`` as soon as it passes the limit, and its download is
    stopped, so a peer cannot make us buffer an endless answer."""
    collector = _BodyCollector(max_bytes)
    response.deliverBody(collector)
    return collector.deferred


def _headers_dict(headers: Headers) -> dict[str, list[str]]:
    return {
        name.decode("latin-1").lower(): [v.decode("latin-1") for v in values]
        for name, values in headers.getAllRawHeaders()
    }


def _is_tls_failure(exc: BaseException) -> bool:
    mod = type(exc).__module__ or ""
    return mod.startswith("OpenSSL") or mod.startswith("service_identity")


def _flatten(exc: BaseException) -> list[BaseException]:
    """The exception and, for Twisted's ``_WrapperException``s, the wrapped reasons."""
    out = [exc]
    for reason in getattr(exc, "reasons", None) or []:
        if isinstance(reason, Failure):
            out += _flatten(reason.value)
    return out


def _classify(destination: str, exc: BaseException, timeout: float) -> Exception:
    """Map a Twisted/OpenSSL failure onto our ``FederationRequestError`` types."""
    if isinstance(exc, (FederationRequestError, MatrixError)):
        return exc
    if isinstance(exc, (defer.TimeoutError, defer.CancelledError)):
        return RequestTimedOut(destination, f"no complete response within {timeout:g} s")
    all_excs = _flatten(exc)
    refused = next((e for e in all_excs if isinstance(e, AddressRefused)), None)
    if refused is not None:
        return refused
    tls = next((e for e in all_excs if _is_tls_failure(e)), None)
    if tls is not None:
        return TLSFailure(destination, f"TLS failed: {type(tls).__name__}: {tls}")
    if any(isinstance(e, ResponseTooLarge) for e in all_excs):
        return InvalidResponse(
            destination, str(next(e for e in all_excs if isinstance(e, ResponseTooLarge)))
        )
    if any(isinstance(e, terror.TimeoutError) for e in all_excs):
        return DestinationUnreachable(destination, "connection attempt timed out")
    inner = all_excs[-1]
    return DestinationUnreachable(destination, f"{type(inner).__name__}: {inner}")


def _add_timeout(d: defer.Deferred[Any], timeout: float, reactor: Any, destination: str) -> None:
    """Cancel ``d`` after ``timeout`` s; whatever the cancelled operation then fails with
    (often ``ResponseNeverReceived``), the result is ``RequestTimedOut``."""

    def on_timeout(_result: Any, _timeout: float) -> Failure:
        return Failure(RequestTimedOut(destination, f"no complete response within {timeout:g} s"))

    d.addTimeout(timeout, reactor, onTimeoutCancel=on_timeout)


# --- the client ----------------------------------------------------------------------------


class FederationHttpClient:
    """Signed, pooled, TLS-verified requests to other homeservers.

    ``address_filter``: which addresses may be connected to (the node passes one built from
    its config; None connects anywhere, for library use and loopback tests)."""

    def __init__(
        self,
        reactor: Any,
        server_name: str,
        signing_key: SigningKey | Callable[[], SigningKey],
        resolver: ServerResolver,
        tls: ClientTLSPolicy,
        *,
        max_persistent_per_host: int = 5,
        cached_connection_timeout: float = 120.0,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        default_timeout: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        address_filter: AddressFilter | None = None,
    ) -> None:
        self.reactor = reactor
        self.address_filter = address_filter
        self.server_name = server_name
        self._signing_key = signing_key
        self.resolver = resolver
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.default_timeout = default_timeout
        self.max_response_bytes = max_response_bytes
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = max_persistent_per_host
        # Twisted annotates these seconds as int; they only reach callLater, which takes a float.
        self.pool.cachedConnectionTimeout = cached_connection_timeout  # type: ignore[assignment]
        self._agent = Agent.usingEndpointFactory(
            reactor, _FederationEndpointFactory(self), pool=self.pool
        )

    @property
    def signing_key(self) -> SigningKey:
        k = self._signing_key
        return k if isinstance(k, SigningKey) else k()

    # --- public API ----------------------------------------------------------------------
    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """Send a signed request; return ``(status, parsed JSON object)``."""
        raw = await self._send(
            destination, method, path, json_body, query, timeout, self.max_response_bytes
        )
        try:
            # A peer's answer wraps stored events in an envelope: the server-server limit.
            body = parse_json(raw.body, max_depth=MAX_SERVER_JSON_DEPTH)
        except MatrixError as exc:
            raise InvalidResponse(
                destination, f"{method} {path}: response is not JSON ({exc.message})", raw.status
            ) from None
        if not isinstance(body, dict):
            raise InvalidResponse(
                destination, f"{method} {path}: response is not a JSON object", raw.status
            )
        return raw.status, body

    async def request_ok(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Like ``request`` but returns only the body of a 2xx; ``RemoteError`` otherwise."""
        status, body = await self.request(destination, method, path, json_body, query, timeout)
        if not 200 <= status < 300:
            raise RemoteError(destination, status, body)
        return body

    async def get_raw(
        self,
        destination: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> RawResponse:
        """A signed GET returning the raw body (media downloads)."""
        return await self._send(
            destination, "GET", path, None, query, timeout, max_bytes or self.max_response_bytes
        )

    async def close(self) -> None:
        """Close pooled connections (at shutdown and in tests)."""
        await self.pool.closeCachedConnections()

    # --- internals -----------------------------------------------------------------------
    async def _send(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any,
        query: Mapping[str, Any] | None,
        timeout: float | None,
        max_bytes: int,
    ) -> RawResponse:
        parse_server_name(destination)  # InvalidServerName for a bad destination
        timeout = self.default_timeout if timeout is None else timeout
        d = defer.ensureDeferred(
            self._send_inner(destination, method.upper(), path, json_body, query, max_bytes)
        )
        _add_timeout(d, timeout, self.reactor, destination)
        try:
            return await d
        except Exception as exc:  # noqa: BLE001 - classified below
            raise _classify(destination, exc, timeout) from None

    async def _send_inner(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any,
        query: Mapping[str, Any] | None,
        max_bytes: int,
    ) -> RawResponse:
        target = build_target(path, query)
        resolution: Resolution = await self.resolver.resolve(destination)
        headers = Headers(
            {b"Host": [resolution.host_header.encode("ascii")], b"User-Agent": [USER_AGENT]}
        )
        producer = None
        if json_body is not None:
            # The body goes out in canonical JSON, the bytes the signature covers, so the
            # receiver can check the signature without encoding the body again.
            body = encode_canonical_json(json_body)
            auth = sign_request_body(
                method, target, self.server_name, destination, self.signing_key, body
            )
            headers.addRawHeader(b"Content-Type", b"application/json")
            producer = _BytesProducer(body)
        else:
            auth = sign_request(method, target, self.server_name, destination, self.signing_key)
        headers.addRawHeader(b"Authorization", auth.encode("ascii"))
        url = _SCHEME + b"://" + destination.encode("ascii").hex().encode() + target.encode("ascii")
        response = await self._agent.request(method.encode("ascii"), url, headers, producer)
        body = await read_body(response, max_bytes)
        return RawResponse(response.code, _headers_dict(response.headers), body)


class WellKnownGetter:
    """``HttpsGetter`` for the resolver: one HTTPS GET, certificate verified, no redirects."""

    def __init__(
        self,
        reactor: Any,
        tls: ClientTLSPolicy,
        *,
        pool: HTTPConnectionPool | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        address_filter: AddressFilter | None = None,
    ) -> None:
        self.reactor = reactor
        self.pool = pool or HTTPConnectionPool(reactor, persistent=False)
        self._agent = Agent.usingEndpointFactory(
            reactor,
            _HttpsEndpointFactory(reactor, tls, connect_timeout, address_filter),
            pool=self.pool,
        )

    async def get(self, url: str, *, timeout: float, max_bytes: int) -> HttpsResponse:
        host = urlsplit(url).hostname or url
        d = defer.ensureDeferred(self._get(url, max_bytes))
        _add_timeout(d, timeout, self.reactor, host)
        try:
            return await d
        except Exception as exc:  # noqa: BLE001 - every failure becomes a transport error
            raise _classify(host, exc, timeout) from None

    async def _get(self, url: str, max_bytes: int) -> HttpsResponse:
        headers = Headers({b"User-Agent": [USER_AGENT]})
        response = await self._agent.request(b"GET", url.encode("ascii"), headers)
        body = await read_body(response, max_bytes)
        return HttpsResponse(response.code, _headers_dict(response.headers), body)
