"""E2E robustness: hostile requests at a running node (SQLite and PostgreSQL) must not hurt
anyone else.

A pupil (``mallory``) and unauthenticated callers fire what an attacker would try: globs
built to backtrack, oversized filters, JSON nested hundreds of levels deep (in messages, in
their own membership, in account data, in filters), integers beyond 2^64, NUL characters in
identifiers, password guessing through user-interactive auth, a flood of UIA sessions, a
2 GiB declared body, over-long request lines, multipart bodies, a decompression-bomb image
for thumbnails and a port probe through the media repository.  Meanwhile a bystander in
another thread keeps calling ``/versions`` and ``/sync``.

Checked, as a user would see it:
* no hostile request is answered 500, and every error carries a Matrix ``errcode``;
* the bystander's ``/versions`` always answers within 1 s and every ``/sync`` answers 200;
* the room mallory shares with the bystander stays usable (messages, state changes, a kick);
* the node's resident memory grows by less than 50 MiB over the whole attack.

The limits themselves are listed in docs/security.md.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from typing import Any, Callable
from urllib.parse import quote

import pytest

from e2e_helpers import api, http_request

V3 = "/_matrix/client/v3"
MAX_LATENCY_S = 1.0
MAX_RSS_GROWTH = 50 * 1024 * 1024


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _raw_http(
    port: int, head: bytes, body_chunks: list[bytes] = (), timeout: float = 10.0
) -> tuple[int, dict, bytes]:
    """Write ``head`` and up to ``body_chunks`` on a raw socket (stopping as soon as the
    node answers or closes), then read the answer: (status, headers, body); status 0 when
    the node closed the connection without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            head_part, _, rest = answer.partition(b"\r\n\r\n")
            headers = {}
            for line in head_part.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                headers[k.strip().lower().decode()] = v.strip().decode()
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < length:
                data = sock.recv(65536)
                if not data:
                    break
                rest += data
        except (ConnectionResetError, socket.timeout):
            head_part, rest, headers = answer, b"", {}
    if not head_part.startswith(b"HTTP/"):
        return 0, {}, b""
    return int(head_part.split()[1]), headers, rest


class Bystander(threading.Thread):
    """Calls /versions and /sync in a loop and records what it saw."""

    def __init__(self, node: Any, token: str) -> None:
        super().__init__(daemon=True)
        self.node, self.token = node, token
        self.stop = threading.Event()
        self.worst_versions = 0.0
        self.sync_statuses: list[int] = []
        self.versions_failures: list[str] = []

    def run(self) -> None:
        since = None
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status, _h, _b = http_request(
                    "GET", self.node.base_url + "/_matrix/client/versions", timeout=10
                )
            except OSError as exc:
                self.versions_failures.append(repr(exc))
                continue
            self.worst_versions = max(self.worst_versions, time.monotonic() - started)
            if status != 200:
                self.versions_failures.append(f"/versions answered {status}")
            path = f"{V3}/sync?timeout=0" + (f"&since={quote(since)}" if since else "")
            status, body = api(self.node, "GET", path, token=self.token)
            self.sync_statuses.append(status)
            if status == 200:
                since = body["next_batch"]
            time.sleep(0.05)


@pytest.fixture(scope="module")
def arena(node_factory):
    node = node_factory(rate_limits=True)
    bystander = node.register("bystander")
    mallory = node.register("mallory")
    status, room = api(
        node,
        "POST",
        f"{V3}/createRoom",
        token=bystander["access_token"],
        json_body={"preset": "public_chat", "name": "Klasse 7b"},
    )
    assert status == 200, room
    status, body = api(
        node,
        "POST",
        f"{V3}/join/{quote(room['room_id'])}",
        token=mallory["access_token"],
        json_body={},
    )
    assert status == 200, body
    return {"node": node, "bystander": bystander, "mallory": mallory, "room_id": room["room_id"]}


def _hostile_requests(arena: dict) -> list[tuple[str, Callable[[], tuple[int, Any]]]]:
    node = arena["node"]
    m = arena["mallory"]
    tok, me = m["access_token"], quote(m["user_id"])
    room = quote(arena["room_id"])
    port = node.config["client_listener"]["port"]

    def call(
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict | None = None,
        token: str | None = tok,
    ):
        return lambda: api(
            node, method, path, token=token, json_body=body, raw_body=raw, headers=headers
        )

    def password_guesses():
        answers = []
        for i in range(40):
            answers.append(
                api(
                    node,
                    "POST",
                    f"{V3}/account/password",
                    token=tok,
                    json_body={
                        "new_password": "taken over by mallory",
                        "logout_devices": True,
                        "auth": {
                            "type": "m.login.password",
                            "password": f"guess{i}",
                            "identifier": {"type": "m.id.user", "user": m["user_id"]},
                        },
                    },
                )
            )
        limited = [a for a in answers if a[0] == 429]
        assert limited, f"40 wrong passwords were never rate limited: {answers[-3:]}"
        return answers[-1]

    def uia_flood():
        last = None
        for _ in range(300):
            last = api(
                node,
                "POST",
                f"{V3}/register",
                json_body={"username": "flood", "password": "long enough password"},
            )
            assert last[0] in (401, 429), last
        return last

    def huge_declared_body():
        head = (
            b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n"
        )
        status, _h, body = _raw_http(port, head, [b"{" + b" " * 65535] * 32)
        return status, json.loads(body) if body else {}

    def chunked_body():
        head = (
            b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        status, _h, body = _raw_http(port, head, [chunk] * 64)
        return status, json.loads(body) if body else {}

    def long_request_line():
        head = b"GET /_matrix/client/versions?x=" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        status, _h, body = _raw_http(port, head)
        return status, json.loads(body) if body else {}

    def thumbnail_bomb():
        from PIL import Image

        buf = io.BytesIO()
        Image.new("L", (7000, 7000)).save(buf, "PNG", optimize=True)
        status, up = api(
            node,
            "POST",
            "/_matrix/media/v3/upload?filename=bomb.png",
            token=tok,
            raw_body=buf.getvalue(),
            headers={"Content-Type": "image/png"},
        )
        if status != 200:
            return status, up
        media = up["content_uri"][len("mxc://") :]
        answers = []
        threads = [
            threading.Thread(
                target=lambda w=w: answers.append(
                    api(
                        node,
                        "GET",
                        f"/_matrix/client/v1/media/thumbnail/{media}?width={w}&height={w}",
                        token=tok,
                    )
                )
            )
            for w in (32, 96, 320, 640, 800, 1000, 1234, 77)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        bad = [a for a in answers if a[0] == 500]
        return (500, bad) if bad else answers[-1]

    deep = _nested(250)
    return [
        (
            "backtracking glob in an inline filter",
            call(
                "GET",
                f"{V3}/sync?timeout=0&filter="
                + quote(json.dumps({"room": {"timeline": {"types": ["*" * 20 + "!"]}}})),
            ),
        ),
        (
            "thousands of '*' in a stored filter",
            call(
                "POST",
                f"{V3}/user/{me}/filter",
                {"room": {"timeline": {"types": ["*" * 5000 + "!"]}}},
            ),
        ),
        (
            "a filter with 100,000 types",
            call("POST", f"{V3}/user/{me}/filter", {"event_fields": ["a"] * 100_000}),
        ),
        (
            "a message nested 250 deep",
            call(
                "PUT",
                f"{V3}/rooms/{room}/send/m.room.message/deep1",
                {"msgtype": "m.text", "body": "x", "extra": deep},
            ),
        ),
        (
            "own membership nested 250 deep",
            call(
                "PUT",
                f"{V3}/rooms/{room}/state/m.room.member/{me}",
                {"membership": "join", "extra": deep},
            ),
        ),
        (
            "account data nested 300 deep",
            call("PUT", f"{V3}/user/{me}/account_data/org.example.deep", {"x": _nested(300)}),
        ),
        (
            "account data with 2^70",
            call("PUT", f"{V3}/user/{me}/account_data/org.example.big", {"x": 2**70}),
        ),
        (
            "a filter nested 300 deep",
            call("POST", f"{V3}/user/{me}/filter", {"room": {"timeline": {"x": _nested(300)}}}),
        ),
        (
            "createRoom with deep initial state",
            call(
                "POST",
                f"{V3}/createRoom",
                {
                    "initial_state": [
                        {"type": "org.example", "state_key": "", "content": {"x": deep}}
                    ]
                },
            ),
        ),
        (
            "NUL in an alias",
            call(
                "PUT",
                f"{V3}/directory/room/{quote('#a' + chr(0) + 'b:' + node.server_name)}",
                {"room_id": arena["room_id"]},
            ),
        ),
        (
            "NUL in a transaction ID",
            call(
                "PUT",
                f"{V3}/rooms/{room}/send/m.room.message/{quote('t' + chr(0))}",
                {"msgtype": "m.text", "body": "nul"},
            ),
        ),
        (
            "NUL in a state key",
            call("PUT", f"{V3}/rooms/{room}/state/org.example/{quote('k' + chr(0))}", {}),
        ),
        (
            "NUL in an account data type",
            call("PUT", f"{V3}/user/{me}/account_data/{quote('t' + chr(0))}", {}),
        ),
        (
            "NUL in a display name",
            call("PUT", f"{V3}/profile/{me}/displayname", {"displayname": "M" + chr(0)}),
        ),
        (
            "NUL in a login identifier",
            call(
                "POST",
                f"{V3}/login",
                {
                    "type": "m.login.password",
                    "password": "x",
                    "identifier": {"type": "m.id.user", "user": "mal" + chr(0)},
                },
                token=None,
            ),
        ),
        (
            "NUL in a device ID at login",
            call(
                "POST",
                f"{V3}/login",
                {
                    "type": "m.login.password",
                    "password": "x",
                    "device_id": "D" + chr(0),
                    "identifier": {"type": "m.id.user", "user": "mallory"},
                },
                token=None,
            ),
        ),
        (
            "malformed JSON",
            call(
                "POST",
                f"{V3}/createRoom",
                raw=b'{"name": ',
                headers={"Content-Type": "application/json"},
            ),
        ),
        (
            "multipart body on a JSON endpoint",
            call(
                "POST",
                f"{V3}/login",
                raw=b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--b--\r\n',
                headers={"Content-Type": "multipart/form-data; boundary=b"},
                token=None,
            ),
        ),
        ("password guessing through UIA", password_guesses),
        ("a flood of UIA sessions", uia_flood),
        ("2 GiB declared body on /login", huge_declared_body),
        ("4 MiB chunked body on /login", chunked_body),
        ("a 20 KiB request line", long_request_line),
        ("a 7000x7000 PNG thumbnailed at 8 sizes", thumbnail_bomb),
        (
            "port probe through the media repository",
            call("GET", "/_matrix/client/v1/media/download/127.0.0.1:22/probe"),
        ),
    ]


def test_hostile_requests_hurt_nobody(arena):
    node = arena["node"]
    by = arena["bystander"]
    # Warm up what a normal day touches, so the memory baseline is not a cold start.
    for i in range(3):
        status, _ = api(
            node,
            "PUT",
            f"{V3}/rooms/{quote(arena['room_id'])}/send/m.room.message/warm{i}",
            token=by["access_token"],
            json_body={"msgtype": "m.text", "body": f"warm {i}"},
        )
        assert status == 200
    assert api(node, "GET", f"{V3}/sync?timeout=0", token=by["access_token"])[0] == 200
    rss_before = _rss_bytes(node.proc.pid)

    watcher = Bystander(node, by["access_token"])
    watcher.start()
    failures = []
    try:
        for name, attempt in _hostile_requests(arena):
            try:
                status, body = attempt()
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
                continue
            except OSError as exc:  # timed out, connection refused
                failures.append(f"{name}: no answer ({exc!r})")
                continue
            if status == 500 or status == 0:
                failures.append(f"{name}: answered {status} {str(body)[:200]}")
            elif status >= 400 and not (isinstance(body, dict) and body.get("errcode")):
                failures.append(f"{name}: {status} without a Matrix errcode: {str(body)[:200]}")
    finally:
        watcher.stop.set()
        watcher.join(30)
    rss_after = _rss_bytes(node.proc.pid)
    print(
        f"attack: worst /versions {watcher.worst_versions * 1000:.0f} ms over "
        f"{len(watcher.sync_statuses)} bystander syncs; RSS "
        f"{rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB"
    )

    assert not failures, "\n".join(failures)
    assert not watcher.versions_failures, watcher.versions_failures[:5]
    assert watcher.worst_versions < MAX_LATENCY_S, (
        f"/versions took {watcher.worst_versions:.2f}s during the attack"
    )
    assert watcher.sync_statuses and set(watcher.sync_statuses) == {200}, watcher.sync_statuses
    assert rss_after - rss_before < MAX_RSS_GROWTH, (
        f"RSS grew by {(rss_after - rss_before) / 2**20:.0f} MiB"
    )


def test_shared_room_stays_usable(arena):
    """After the attack the bystander sends, changes state, kicks mallory and everyone's
    /sync of the room still answers."""
    node, by, m = arena["node"], arena["bystander"], arena["mallory"]
    room = quote(arena["room_id"])
    for token in (by["access_token"], m["access_token"]):
        status, body = api(node, "GET", f"{V3}/sync?timeout=0", token=token)
        assert status == 200, body
    status, body = api(
        node,
        "PUT",
        f"{V3}/rooms/{room}/send/m.room.message/after",
        token=by["access_token"],
        json_body={"msgtype": "m.text", "body": "ok"},
    )
    assert status == 200, body
    status, body = api(
        node,
        "PUT",
        f"{V3}/rooms/{room}/state/m.room.topic/",
        token=by["access_token"],
        json_body={"topic": "still here"},
    )
    assert status == 200, body
    status, body = api(
        node,
        "POST",
        f"{V3}/rooms/{room}/kick",
        token=by["access_token"],
        json_body={"user_id": m["user_id"], "reason": "tests"},
    )
    assert status == 200, body
    status, body = api(
        node, "GET", f"{V3}/rooms/{room}/messages?dir=b&limit=5", token=by["access_token"]
    )
    assert status == 200 and body["chunk"], body
