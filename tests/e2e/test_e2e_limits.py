"""E2E: per-user rate limits (429 M_LIMIT_EXCEEDED with retry_after_ms), request body limits
(413 M_TOO_LARGE), /health and /metrics — against a real node on SQLite and PostgreSQL.

The HTTP edge cases (node/http/site.py) talk raw HTTP over sockets: a body refused by its
declared length before it is sent, chunked bodies cut off, long and over-long request
lines, malformed requests and multipart bodies, on the client and federation listeners."""

from __future__ import annotations

import json
import socket
import ssl
from urllib.parse import quote

import pytest

from e2e_helpers import api, http_request, text


def test_rate_limited_send_is_429_with_retry_after(node_factory):
    limited = node_factory(rate_limits={"per_second": 0.1, "burst_count": 3})
    token = limited.register("hasty")["access_token"]
    status, body = api(limited, "POST", "/_matrix/client/v3/createRoom", token=token, json_body={})
    assert status == 200, body
    room = quote(body["room_id"])
    answers = [
        api(
            limited,
            "PUT",
            f"/_matrix/client/v3/rooms/{room}/send/m.room.message/r{i}",
            token=token,
            json_body=text(f"spam {i}"),
        )
        for i in range(6)
    ]
    limited_answers = [b for s, b in answers if s == 429]
    assert limited_answers, answers
    assert all(b["errcode"] == "M_LIMIT_EXCEEDED" for b in limited_answers)
    assert all(
        isinstance(b["retry_after_ms"], int) and b["retry_after_ms"] > 0 for b in limited_answers
    )
    # Another user has their own budget.
    other = limited.register("patient")["access_token"]
    status, body = api(limited, "POST", "/_matrix/client/v3/createRoom", token=other, json_body={})
    assert status == 200, body


def test_request_body_limit_is_413(node):
    token = node.register("bigbody")["access_token"]
    limit = 1024 * 1024  # the config default max_request_body_bytes
    # A client that sends its whole body before reading (urllib, as most clients do) must
    # read the 413, not a connection reset: the node drains a refused body for a while.
    for size in (limit + 1, 2 * limit, 3 * limit):
        for _ in range(4):
            status, body = api(
                node,
                "POST",
                "/_matrix/client/v3/createRoom",
                token=token,
                json_body={"name": "x" * size},
            )
            assert status == 413 and body["errcode"] == "M_TOO_LARGE"


def test_health_and_metrics(node):
    status, _, _ = http_request("GET", node.base_url + "/health")
    assert status == 200
    node.register("counted")
    status, headers, data = http_request("GET", node.metrics_url + "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    text_ = data.decode()
    assert "parta_http_requests_total{" in text_
    assert 'route="/_matrix/client/v3/register"' in text_


# --- the HTTP edge (node/http/site.py), on raw sockets -------------------------------------
def _connect(port: int, *, tls: bool = False) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if tls:  # the federation listener's self-signed dev certificate
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    return sock


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    """Read one JSON answer; the node must then close the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the answer"
        body += chunk
    return int(lines[0].split(" ")[1]), headers, json.loads(body)


def _closed_by_node(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True


def _port(node, listener: str) -> int:
    return (
        node.config[listener]["port"]
        if listener != "federation"
        else node.config["federation"]["listener"]["port"]
    )


@pytest.mark.parametrize(
    "listener,path",
    [
        ("client_listener", "/_matrix/client/v3/login"),
        ("federation", "/_matrix/federation/v1/send/t1"),
    ],
)
def test_huge_declared_body_is_refused_before_it_is_sent(node, listener, path):
    head = (
        f"{'PUT' if listener == 'federation' else 'POST'} {path} HTTP/1.1\r\n"
        "Host: school\r\nContent-Type: application/json\r\n"
        f"Content-Length: {2 * 1024**3}\r\n\r\n"
    ).encode()
    with _connect(_port(node, listener), tls=listener == "federation") as sock:
        sock.sendall(head)  # headers only: not one body byte yet
        status, headers, body = _read_answer(sock)
        assert status == 413 and body["errcode"] == "M_TOO_LARGE", body
        assert headers["connection"] == "close"
        try:  # a few MB more change nothing
            sock.sendall(b"x" * (4 * 1024 * 1024))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            pass
        assert _closed_by_node(sock)
    assert http_request("GET", node.base_url + "/health")[0] == 200


def test_chunked_body_over_the_limit_is_cut_off(node):
    head = (
        b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: school\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * (64 * 1024))
    with _connect(_port(node, "client_listener")) as sock:
        sock.sendall(head)
        try:
            for _ in range(32):  # 2 MiB offered, the limit is 1 MiB
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the node closed once it had answered
        status, _, body = _read_answer(sock)
    assert status == 413 and body["errcode"] == "M_TOO_LARGE", body


def test_long_uri_works_and_over_long_one_is_414(node):
    token = node.register("longuri")["access_token"]
    flt = quote(
        json.dumps(
            {"room": {"rooms": [f"!room{i:05d}abcdefgh:{node.server_name}" for i in range(400)]}}
        )
    )
    assert 16 * 1024 < len(flt) < 30 * 1024  # past twisted's own 16 KiB line limit
    status, body = api(node, "GET", f"/_matrix/client/v3/sync?timeout=0&filter={flt}", token=token)
    assert status == 200 and "next_batch" in body, body

    with _connect(_port(node, "client_listener")) as sock:
        sock.sendall(
            b"GET /_matrix/client/v3/sync?filter="
            + b"a" * (64 * 1024)
            + b" HTTP/1.1\r\nHost: school\r\n\r\n"
        )
        status, _, body = _read_answer(sock)
    assert status == 414 and body["errcode"] == "M_TOO_LARGE", body


def test_malformed_request_and_multipart_body_get_matrix_errors(node):
    with _connect(_port(node, "client_listener")) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nNo colon in this header\r\n\r\n")
        status, _, body = _read_answer(sock)
    assert status == 400 and body["errcode"] == "M_UNRECOGNIZED", body

    form = b'--b\r\nContent-Disposition: form-data; name="user"\r\n\r\nanna\r\n--b--\r\n'
    status, body = api(
        node,
        "POST",
        "/_matrix/client/v3/login",
        raw_body=form,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert status == 400 and body["errcode"] == "M_NOT_JSON", body
