"""The HTTP edge: the node's twisted ``Site``, ``HTTPChannel`` and ``Request`` subclasses.

``twisted.web`` reads a whole request before any resource sees it: the body goes into memory
(under 100,000 bytes) or a temporary file, however large its ``Content-Length``, and only then
is ``render`` called.  A ``Content-Length: 2 GiB`` on an unauthenticated ``POST /login``
would fill the disk before ``ApiResource`` could refuse it.  So the limits are enforced here,
as the bytes arrive:

* **Body** -- when the headers are in, the listener's resource names the body limit of the
  route ``method path`` (``ApiResource.body_limit``: ``max_request_body_bytes``, the media
  upload route's ``media.max_upload_bytes``, the federation listener's own).  A larger
  declared ``Content-Length`` gets 413 ``M_TOO_LARGE`` at once and the connection is closed
  without reading the body (no ``100 Continue`` is sent).  A chunked body is counted as it
  arrives and cut off with the same 413 when it passes the limit.
* **Request line and headers** -- twisted closes the connection *without any answer* when
  one line exceeds ``LineReceiver.MAX_LENGTH`` (16 KiB) and answers a bare
  ``400 Bad Request`` (no body) when the request line plus headers exceed
  ``HTTPChannel.totalHeadersSize`` (16 KiB) or a request is malformed.  Here the request
  line may be up to ``MAX_REQUEST_LINE_BYTES`` (a ``/sync`` with a large inline filter
  fits), a longer one gets 414 ``M_TOO_LARGE``; a header section over ``MAX_HEADER_BYTES``
  or with more than ``MAX_HEADERS`` fields gets 431 ``M_TOO_LARGE``; anything twisted
  cannot parse gets 400 ``M_UNRECOGNIZED``.  All are JSON and close the connection.
* **Forms** -- twisted parses ``multipart/form-data`` and urlencoded POST bodies into
  ``request.args``, mixing body fields (even an ``access_token``) into the query.  The site
  turns that off: arguments come from the query string only, and a JSON endpoint answers a
  non-JSON body with ``M_NOT_JSON``.
* **Slow clients** -- the idle timeout (``IDLE_TIMEOUT_SECONDS``, reset by every byte
  received, paused while a request is handled) closes silent connections; a request's
  headers must be complete within ``HEADER_TIMEOUT_SECONDS`` of its first byte (408), so a
  slowloris client dribbling a header line every few seconds is cut off too.

Errors written from the channel bypass ``ApiResource`` (no route ran, so no metrics line),
but carry the same JSON shape and CORS headers, so browser clients can read them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import orjson
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, server

from .server import CORS_HEADERS

log = logging.getLogger("parta.http")

MAX_REQUEST_LINE_BYTES = 32 * 1024  # method + URI + version; twisted's default is 16 KiB
MAX_HEADER_BYTES = 64 * 1024  # request line + all header lines (twisted: 16 KiB)
MAX_HEADERS = 200  # header fields per request (twisted: 500)
IDLE_TIMEOUT_SECONDS = 60  # no byte received for this long: connection closed
HEADER_TIMEOUT_SECONDS = 30  # first byte of a request to the end of its headers
REFUSED_ABORT_SECONDS = 10  # a refused client that does not go away is dropped
# After a refusal, what the client still sends (the body it had begun) is read and dropped
# for a little while, so that it reads the answer instead of a connection reset (a socket
# closed with unread data answers with RST, which can destroy the answer in flight).
LINGER_BYTES = 4 * 1024 * 1024
LINGER_SECONDS = 2
DEFAULT_BODY_LIMIT = 64 * 1024  # resources without a body_limit() (the metrics page)

BodyLimit = Callable[[bytes, bytes, "int | None"], int]


class EdgeRequest(server.Request):
    """A request whose body is counted against ``body_limit`` as it arrives."""

    channel: EdgeChannel  # what NodeSite builds (twisted declares an HTTPChannel)

    body_limit: int | None = None  # set by the channel when the headers are in
    _body_received = 0

    def gotLength(self, length: int | None) -> None:
        # A chunked body has no declared length: size the buffer for the route's limit
        # (memory below twisted's 100,000-byte threshold, a temporary file above).
        super().gotLength(length if length is not None else self.body_limit)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_received += len(data)
        limit = self.body_limit
        if limit is not None and self._body_received > limit:
            self.channel.refuse_body(limit)
            return
        super().handleContentChunk(data)


class EdgeChannel(http.HTTPChannel):
    """``HTTPChannel`` that answers every refusal with a Matrix JSON error and closes."""

    MAX_LENGTH = MAX_REQUEST_LINE_BYTES
    totalHeadersSize = MAX_HEADER_BYTES
    maxHeaders = MAX_HEADERS

    site: NodeSite  # set by NodeSite when it builds the channel
    _refused = False
    _header_deadline: Any = None
    _linger_call: Any = None
    _lingered = 0

    # --- the header phase ---------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self._refused:  # answered: drop what comes, for a bounded while
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self._close_refused()
            return
        super().dataReceived(data)
        # Headers begun but not complete after this read: their deadline starts.  Headers
        # that arrive whole in one read (nearly every request) never arm a timer.
        if (
            self._header_deadline is None
            and self.line_mode
            and not self._refused
            and not self._handlingRequest
            and (self._receivedHeaderSize or self._buffer)
        ):
            self._header_deadline = self.callLater(HEADER_TIMEOUT_SECONDS, self._headers_too_slow)

    def lineReceived(self, line: bytes) -> None:
        if self._refused:  # the rest of a buffer that held a refused request
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse(
                431,
                b"Request Header Fields Too Large",
                "M_TOO_LARGE",
                f"Request headers too large (limit {self.totalHeadersSize} bytes)",
            )
            return
        super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        super().rawDataReceived(data)

    def lineLengthExceeded(self, line: bytes) -> None:
        # No line of the request has been counted yet: this is the request line.
        if self._receivedHeaderSize == 0:
            self._refuse(
                414,
                b"URI Too Long",
                "M_TOO_LARGE",
                f"Request line too long (limit {self.MAX_LENGTH} bytes)",
            )
        else:
            self._refuse(
                431,
                b"Request Header Fields Too Large",
                "M_TOO_LARGE",
                f"Request header line too long (limit {self.MAX_LENGTH} bytes)",
            )

    def headerReceived(self, line: bytes) -> bool:
        if self._receivedHeaderCount >= self.maxHeaders:
            self._refuse(
                431,
                b"Request Header Fields Too Large",
                "M_TOO_LARGE",
                f"Too many request headers (limit {self.maxHeaders})",
            )
            return False
        return super().headerReceived(line)

    def allHeadersReceived(self) -> None:
        self._cancel_header_deadline()
        request = self.requests[-1]
        declared = self.length
        limit = self.site.body_limit(self._command, self._path, declared)
        if declared is not None and declared > limit:
            self.refuse_body(limit)
            return
        request.body_limit = limit
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if self._refused:  # a chunked body ended after it was refused
            return
        super().allContentReceived()

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        self._refuse(
            408,
            b"Request Timeout",
            "M_UNKNOWN",
            f"Request headers not received within {HEADER_TIMEOUT_SECONDS} s",
        )

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            if self._header_deadline.active():
                self._header_deadline.cancel()
            self._header_deadline = None

    # --- refusals ---------------------------------------------------------------------------
    def refuse_body(self, limit: int) -> None:
        self._refuse(
            413,
            b"Payload Too Large",
            "M_TOO_LARGE",
            f"Request body too large (limit {limit} bytes)",
        )

    def _respondToBadRequestAndDisconnect(self) -> None:
        # twisted's answer to a request it cannot parse (bad request line, header without
        # a colon, non-numeric Content-Length, unknown Transfer-Encoding, bad chunking).
        self._refuse(400, b"Bad Request", "M_UNRECOGNIZED", "Malformed HTTP request")

    def _refuse(self, status: int, reason: bytes, errcode: str, error: str) -> None:
        """Answer ``status`` with a Matrix error and close, without reading further."""
        if self._refused:
            return
        self._refused = True
        self._cancel_header_deadline()
        body = orjson.dumps({"errcode": errcode, "error": error})
        head = [
            b"HTTP/1.1 %d %s" % (status, reason),
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(body),
            b"Cache-Control: no-cache, no-store, must-revalidate",
            b"Connection: close",
        ]
        head += [name + b": " + value for name, value in CORS_HEADERS.items()]
        log.info("event=http_refused status=%d errcode=%s", status, errcode)
        # Connected: a channel answers only while it has its transport.
        self.transport.write(  # type: ignore[union-attr]
            b"\r\n".join(head) + b"\r\n\r\n" + body
        )
        # Plain TCP: half-close, so the client sees the end of the answer at once while we
        # still drain its body (TLS has no half-close here: it lingers without).
        half_close = (
            None
            if ISSLTransport.providedBy(self.transport)
            else getattr(self.transport, "loseWriteConnection", None)
        )
        if half_close is not None:
            half_close()
        self._linger_call = self.callLater(LINGER_SECONDS, self._close_refused)
        # A client that keeps the connection open (e.g. still pushing its body over TLS)
        # is dropped; connectionLost cancels this.
        if self._abortingCall is None:
            self._abortingCall = self.callLater(REFUSED_ABORT_SECONDS, self.forceAbortClient)

    def _close_refused(self) -> None:
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None
        self.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_header_deadline()
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None
        super().connectionLost(reason)


class NodeSite(server.Site):
    """The ``Site`` of every node listener (client API, federation, metrics).

    No access log (twisted's would print query strings, which may hold access tokens), no
    tracebacks in answers, no form parsing, and the limits of this module.
    """

    requestFactory = EdgeRequest

    def __init__(self, resource: Any, *, reactor: Any = None) -> None:
        super().__init__(
            resource, timeout=IDLE_TIMEOUT_SECONDS, reactor=reactor, parsePOSTFormSubmission=False
        )
        self.displayTracebacks = False
        self._body_limit: BodyLimit | None = getattr(resource, "body_limit", None)

    def protocol(self) -> EdgeChannel:  # type: ignore[override]
        # HTTP/1.1 only: the listeners offer no ALPN, so twisted's HTTP/2 wrapper is unused.
        return EdgeChannel()

    def body_limit(self, method: bytes, uri: bytes, declared: int | None) -> int:
        """The body limit for ``method uri`` (see ``ApiResource.body_limit``)."""
        if self._body_limit is None:
            return DEFAULT_BODY_LIMIT
        return self._body_limit(method, uri, declared)

    def log(self, request: Any) -> None:
        pass


def make_site(resource: Any, *, reactor: Any = None) -> NodeSite:
    """The site for one listener; ``reactor`` drives its timeouts (a ``Clock`` in tests)."""
    return NodeSite(resource, reactor=reactor)
