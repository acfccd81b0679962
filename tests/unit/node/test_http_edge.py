"""The HTTP edge (``node.http.site``), in-process: bytes go into a real twisted ``HTTPChannel``
built by the node's ``Site`` and the answer is read back from a ``StringTransport``.

What a client sees is asserted: the status line, the Matrix ``errcode``, whether the
connection was closed, and that nothing of a refused body was buffered (the request's
``content`` stays empty), so a hostile request cannot grow the node's memory or disk.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from node.federation.listener import make_resource as federation_resource
from node.http.router import Router
from node.http.server import ApiResource
from node.http.site import LINGER_BYTES, LINGER_SECONDS, REFUSED_ABORT_SECONDS, make_site

CLIENT_LIMIT = 1000
UPLOAD_LIMIT = 50_000
UPLOAD = "/_matrix/media/v3/upload"
LOGIN = "/_matrix/client/v3/login"


def _router() -> Router:
    router = Router()

    async def login(req):
        body = req.json()
        return 200, {"got": body, "args": sorted(req.args)}

    async def upload(req):
        return 200, {"size": len(req.body), "args": sorted(req.args)}

    async def sync(req):
        return 200, {"filter_len": len(req.query("filter") or "")}

    router.add("POST", LOGIN, login, auth=False)
    router.add("POST", UPLOAD, upload, auth=False)
    router.add("GET", "/_matrix/client/v3/sync", sync, auth=False)
    return router


class TcpTransport(StringTransport):
    """A ``StringTransport`` that can half-close, as a TCP connection can."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Conn:
    """One client connection to ``site`` over an in-memory transport."""

    def __init__(self, site) -> None:
        self.channel = site.buildProtocol(None)
        self.transport = TcpTransport()
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        # Delivered even after the node closed its side: a TLS connection keeps reading
        # until the peer's close_notify, so the channel itself must ignore the rest.
        self.channel.dataReceived(data)

    def lose(self) -> None:
        self.channel.connectionLost(Failure(ConnectionDone()))

    @property
    def closed(self) -> bool:
        """The node has finished its side: closed, or half-closed while it drains."""
        return bool(self.transport.disconnecting or self.transport.write_closed)

    def response(self) -> tuple[int, dict[str, str], dict | None]:
        raw = self.transport.value()
        assert raw, "no response was written"
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        length = int(headers.get("content-length", len(body)))
        data = json.loads(body[:length]) if length else None
        return status, headers, data

    def content_size(self) -> int:
        """Bytes of request body the node holds for the pending request (0 if none)."""
        sizes = []
        for req in self.channel.requests:
            content = getattr(req, "content", None)
            if content is not None:
                pos = content.tell()
                content.seek(0, 2)
                sizes.append(content.tell())
                content.seek(pos)
        return max(sizes, default=0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(clock):
    resource = ApiResource(
        _router(),
        authenticate=None,
        max_body_bytes=CLIENT_LIMIT,
        body_limits={UPLOAD: UPLOAD_LIMIT},
    )
    return make_site(resource, reactor=clock)


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: school.example"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _json_post(path: str, body: bytes, **headers: str) -> bytes:
    return (
        _head(
            "POST",
            path,
            {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers},
        )
        + body
    )


# --- (a) bodies: refused by their declared length, before they are read ------------------
def test_huge_declared_length_is_413_at_once_and_nothing_is_buffered(site):
    conn = Conn(site)
    conn.send(
        _head(
            "POST", LOGIN, {"Content-Type": "application/json", "Content-Length": str(2 * 1024**3)}
        )
    )
    # The answer is there before a single body byte was sent.
    status, headers, body = conn.response()
    assert status == 413 and body["errcode"] == "M_TOO_LARGE", body
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close" and conn.closed
    conn.send(b"x" * (4 * 1024 * 1024))
    assert conn.content_size() == 0
    conn.lose()
    # Other clients are not affected.
    other = Conn(site)
    other.send(_json_post(LOGIN, b'{"type": "m.login.password"}'))
    status, _, body = other.response()
    assert status == 200 and body["got"] == {"type": "m.login.password"}


def test_expect_continue_over_the_limit_gets_413_not_100(site):
    conn = Conn(site)
    conn.send(
        _head("POST", LOGIN, {"Content-Length": str(CLIENT_LIMIT + 1), "Expect": "100-continue"})
    )
    assert not conn.transport.value().startswith(b"HTTP/1.1 100")
    assert conn.response()[0] == 413 and conn.closed


def test_media_upload_route_has_its_own_larger_limit(site):
    ok = Conn(site)
    data = b"u" * (CLIENT_LIMIT * 10)
    ok.send(
        _head(
            "POST",
            UPLOAD + "?filename=a.bin",
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        + data
    )
    status, _, body = ok.response()
    assert status == 200 and body["size"] == len(data)

    big = Conn(site)
    big.send(
        _head(
            "POST",
            UPLOAD,
            {"Content-Type": "application/octet-stream", "Content-Length": str(UPLOAD_LIMIT + 1)},
        )
    )
    status, _, body = big.response()
    assert status == 413 and body["errcode"] == "M_TOO_LARGE" and big.closed
    # The larger limit is the upload route's only: not for POST to another path.
    other = Conn(site)
    other.send(_head("POST", LOGIN, {"Content-Length": str(CLIENT_LIMIT * 10)}))
    assert other.response()[0] == 413


def test_chunked_body_is_cut_off_at_the_limit(site):
    conn = Conn(site)
    conn.send(
        _head("POST", LOGIN, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    )
    assert conn.transport.value() == b""  # no length known yet: reading
    chunk = b"a" * 400
    for _ in range(20):  # 8000 bytes offered, limit 1000
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    status, _, body = conn.response()
    assert status == 413 and body["errcode"] == "M_TOO_LARGE" and conn.closed
    assert conn.content_size() <= CLIENT_LIMIT
    conn.send(b"0\r\n\r\n")  # the end of the body changes nothing
    assert conn.transport.value().count(b"HTTP/1.1") == 1
    conn.lose()


def test_small_chunked_body_is_accepted(site):
    conn = Conn(site)
    body = b'{"type": "m.login.token"}'
    conn.send(
        _head("POST", LOGIN, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    status, _, answer = conn.response()
    assert status == 200 and answer["got"] == {"type": "m.login.token"}


def test_federation_listener_refuses_by_declared_length(clock):
    site = make_site(federation_resource(_router(), max_body_bytes=2000), reactor=clock)
    conn = Conn(site)
    conn.send(_head("POST", LOGIN, {"Content-Length": str(300 * 1024 * 1024)}))
    status, _, body = conn.response()
    assert status == 413 and body["errcode"] == "M_TOO_LARGE" and conn.closed
    assert conn.content_size() == 0


# --- (b) malformed requests and form bodies: Matrix errors ---------------------------------
def test_multipart_body_on_a_json_endpoint_is_not_json(site):
    conn = Conn(site)
    body = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'
    conn.send(
        _head(
            "POST",
            LOGIN,
            {
                "Content-Type": "multipart/form-data",  # no boundary
                "Content-Length": str(len(body)),
            },
        )
        + body
    )
    status, _, answer = conn.response()
    assert status == 400 and answer["errcode"] == "M_NOT_JSON", answer


def test_form_bodies_never_become_query_arguments(site):
    conn = Conn(site)
    body = b"access_token=someone_elses&filename=x"
    conn.send(
        _head(
            "POST",
            UPLOAD + "?filename=a.txt",
            {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(body))},
        )
        + body
    )
    status, _, answer = conn.response()
    assert status == 200 and answer["args"] == ["filename"], answer


def test_long_but_legitimate_uri_works(site):
    conn = Conn(site)
    flt = "%7B%22room%22%3A%7B%22rooms%22%3A%5B" + "%22%21abcdefghijklmnop%3As.example%22%2C" * 500
    assert 16 * 1024 < len(flt) < 24 * 1024  # over twisted's 16 KiB line limit
    conn.send(_head("GET", "/_matrix/client/v3/sync?filter=" + flt, {}))
    status, _, answer = conn.response()
    assert status == 200 and answer["filter_len"] > 10_000


def test_over_long_request_line_is_414_json(site):
    conn = Conn(site)
    conn.send(b"GET /_matrix/client/v3/sync?filter=" + b"a" * (80 * 1024))
    status, _, answer = conn.response()
    assert status == 414 and answer["errcode"] == "M_TOO_LARGE" and conn.closed


def test_over_long_header_section_is_431_json(site):
    conn = Conn(site)
    conn.send(
        _head("GET", "/_matrix/client/v3/sync", {f"X-Pad-{i}": "p" * 1000 for i in range(100)})
    )
    status, _, answer = conn.response()
    assert status == 431 and answer["errcode"] == "M_TOO_LARGE" and conn.closed


@pytest.mark.parametrize(
    "raw",
    [
        b"NONSENSE\r\n\r\n",
        b"GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    ],
)
def test_malformed_requests_get_a_json_400(site, raw):
    conn = Conn(site)
    conn.send(raw)
    status, headers, answer = conn.response()
    assert status == 400 and answer["errcode"] == "M_UNRECOGNIZED", answer
    assert headers["content-type"] == "application/json" and conn.closed


# --- (c) slow clients ------------------------------------------------------------------------
def test_idle_connection_is_closed(site, clock):
    conn = Conn(site)
    clock.advance(59)
    assert not conn.closed
    clock.advance(2)
    assert conn.closed


def test_slowloris_headers_are_cut_off_by_the_header_deadline(site, clock):
    conn = Conn(site)
    conn.send(b"GET /_matrix/client/v3/sync HTTP/1.1\r\n")
    for i in range(10):  # one header line every 20 s: never idle
        clock.advance(20)
        conn.send(b"X-Slow-%d: 1\r\n" % i)
        if conn.closed:
            break
    assert conn.closed
    status, _, answer = conn.response()
    assert status == 408 and answer["errcode"] == "M_UNKNOWN"


def test_keep_alive_requests_each_get_their_own_header_deadline(site, clock):
    conn = Conn(site)
    for _ in range(3):
        clock.advance(50)  # idle between requests, under 60 s
        conn.send(_head("GET", "/_matrix/client/v3/sync", {}))
    assert not conn.closed
    assert conn.transport.value().count(b"HTTP/1.1 200") == 3


def test_refused_client_that_keeps_the_connection_open_is_dropped(site, clock):
    conn = Conn(site)
    conn.send(_head("POST", LOGIN, {"Content-Length": str(10 * CLIENT_LIMIT)}))
    assert conn.response()[0] == 413
    conn.send(b"x" * 100_000)  # a client still pushing its body
    clock.advance(REFUSED_ABORT_SECONDS + 1)
    assert conn.transport.disconnected  # aborted, not just half-closed


def test_refused_client_still_sending_its_body_can_read_the_answer(site, clock):
    """After a refusal the node half-closes and drains what the client still sends for a
    bounded while (a socket closed with unread data answers with a reset, which can
    destroy the 413 before the client reads it), then closes."""
    conn = Conn(site)
    conn.send(_head("POST", LOGIN, {"Content-Length": str(2 * CLIENT_LIMIT)}))
    assert conn.response()[0] == 413 and conn.transport.write_closed
    conn.send(b"x" * (2 * CLIENT_LIMIT))  # the rest of the body: read and dropped
    assert not conn.transport.disconnecting and conn.content_size() == 0
    assert conn.transport.value().count(b"HTTP/1.1") == 1
    clock.advance(LINGER_SECONDS + 0.1)
    assert conn.transport.disconnecting


def test_draining_a_refused_body_is_bounded(site):
    conn = Conn(site)
    conn.send(_head("POST", LOGIN, {"Content-Length": str(2 * 1024**3)}))
    assert conn.response()[0] == 413
    for _ in range(5):
        conn.send(b"x" * (LINGER_BYTES // 4))
    assert conn.transport.disconnecting and conn.content_size() == 0


def test_headers_arriving_whole_arm_no_header_timer(site, clock):
    conn = Conn(site)
    conn.send(_head("GET", "/_matrix/client/v3/sync", {}))
    assert conn.response()[0] == 200
    # The idle timeout is the only timer: the hot path pays no per-request deadline.
    assert len(clock.getDelayedCalls()) == 1
