"""E2E robustness over federation: hostile PDUs, EDUs and requests from another server must
not brick a room, break anyone's /sync or block the node (SQLite and PostgreSQL).

A fake homeserver (bench/federation_env.py ``FakeServer``, real signing key, X-Matrix
signed requests) joins a public room on node A as ``@mallory`` and sends:

* a valid PDU with ``depth`` 2^53-1, the largest canonical integer: afterwards A's users
  must still be able to send messages, change state, kick and leave (a new event's depth is
  clamped; server-server API "PDUs");
* a PDU whose content is nested 250 levels deep, and an EDU likewise;
* a transaction whose body is not JSON, one nested far too deep, and an unsigned request
  declaring a 2 GiB body (refused by its declared length before anything is read).

Meanwhile A's users keep syncing; afterwards A answers ``/versions`` within 1 s, every
member's ``/sync`` answers 200 and the fake server's next ordinary PDU is accepted.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import quote

import pytest

from e2e_helpers import http_request
from fed_fixtures import fake_server, fed_ca, fed_cluster  # noqa: F401 - pytest fixtures
from fed_harness import Account, FakeServer, server_host
from fed_harness import account_api as _api
from federation_env import FakeRoom

USES_POSTGRES = True
V3 = "/_matrix/client/v3"
MAX_CANONICAL_INT = 2**53 - 1


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _deep_pdu(room: FakeRoom, sender: str, levels: int) -> tuple[dict, str]:
    """A correctly hashed and signed PDU whose content is nested ``levels`` deep.  Parta's
    own encoder refuses such content, so the content hash is computed with the
    ``canonicaljson`` library; the signature covers the redacted event, which is shallow."""
    import hashlib

    import canonicaljson

    from federation.b64 import encode_base64
    from federation.events.builder import sign_event
    from federation.events.model import Event

    ev = room.build(
        type="m.room.message", sender=sender, content={"msgtype": "m.text", "body": "tief"}
    )
    pdu = {k: v for k, v in ev.pdu.items() if k not in ("signatures", "hashes", "unsigned")}
    pdu["content"] = {"msgtype": "m.text", "body": "tief", "x": _nested(levels)}
    digest = hashlib.sha256(canonicaljson.encode_canonical_json(pdu)).digest()
    pdu["hashes"] = {"sha256": encode_base64(digest)}
    sign_event(pdu, room.version, room.fake.server_name, room.fake.signing_key)
    return pdu, Event(pdu, room.version).event_id


def _send_canonical(fake: FakeServer, destination: str, body: dict) -> tuple[int, Any]:
    """``PUT /send`` with ``body`` encoded by the ``canonicaljson`` library and signed with
    X-Matrix over those bytes (Parta's encoder would refuse the nesting on the way out)."""
    import uuid

    import canonicaljson

    from federation.transport.xmatrix import sign_request_body
    from federation_env import TLSNameConnection

    path = f"/_matrix/federation/v1/send/deep-{uuid.uuid4().hex[:8]}"
    data = canonicaljson.encode_canonical_json(body)
    headers = {
        "Host": destination,
        "Content-Type": "application/json",
        "Authorization": sign_request_body(
            "PUT", path, fake.server_name, destination, fake.signing_key, data
        ),
    }
    conn = TLSNameConnection(
        server_host(destination), int(destination.rsplit(":", 1)[1]), fake._client_ctx, 30
    )
    try:
        conn.request("PUT", path, body=data, headers=headers)
        resp = conn.getresponse()
        status, raw = resp.status, resp.read()
    finally:
        conn.close()
    return status, json.loads(raw) if raw else None


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request, fed_cluster, fake_server: FakeServer):  # noqa: F811 - the pytest fixture imported above
    (node,) = fed_cluster.create(1, backends=[request.param])
    alice, bob = Account(node, "alice"), Account(node, "bob")
    status, created = _api(
        alice, "POST", f"{V3}/createRoom", {"preset": "public_chat", "name": "Lehrerzimmer"}
    )
    assert status == 200, created
    room_id = created["room_id"]
    status, body = _api(bob, "POST", f"{V3}/join/{quote(room_id)}", {})
    assert status == 200, body
    mallory = f"@mallory:{fake_server.server_name}"
    room = FakeRoom.join(fake_server, node.server_name, room_id, mallory)
    return {
        "node": node,
        "alice": alice,
        "bob": bob,
        "room_id": room_id,
        "room": room,
        "mallory": mallory,
        "fake": fake_server,
    }


def _everyone_still_fine(world: dict, tag: str) -> None:
    node = world["node"]
    started = time.monotonic()
    status, _h, _b = http_request("GET", node.base_url + "/_matrix/client/versions", timeout=10)
    assert status == 200 and time.monotonic() - started < 1.0, (status, tag)
    for account in (world["alice"], world["bob"]):
        status, body = _api(account, "GET", f"{V3}/sync?timeout=0")
        assert status == 200, (tag, body)
    status, body = _api(
        world["bob"],
        "PUT",
        f"{V3}/rooms/{quote(world['room_id'])}/send/m.room.message/{tag}",
        {"msgtype": "m.text", "body": tag},
    )
    assert status == 200, (tag, body)


def test_max_depth_pdu_cannot_brick_the_room(world):
    room, mallory = world["room"], world["mallory"]
    ev = room.build(
        type="m.room.message",
        sender=mallory,
        depth=MAX_CANONICAL_INT,
        content={"msgtype": "m.text", "body": "ganz tief"},
    )
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200, reply
    room.advance(ev)
    rid = quote(world["room_id"])
    alice = world["alice"]
    status, sent = _api(
        alice,
        "PUT",
        f"{V3}/rooms/{rid}/send/m.room.message/after-depth",
        {"msgtype": "m.text", "body": "geht noch"},
    )
    assert status == 200, sent
    status, ev_json = _api(alice, "GET", f"{V3}/rooms/{rid}/event/{quote(sent['event_id'])}")
    assert status == 200, ev_json
    status, body = _api(
        alice, "PUT", f"{V3}/rooms/{rid}/state/m.room.topic/", {"topic": "weiterhin nutzbar"}
    )
    assert status == 200, body
    _everyone_still_fine(world, "depth")


def test_deeply_nested_pdu_and_edu_are_refused_harmlessly(world):
    room, mallory, fake = world["room"], world["mallory"], world["fake"]
    deep, deep_id = _deep_pdu(room, mallory, 250)
    dest = world["node"].server_name
    status, reply = _send_canonical(
        fake,
        dest,
        {"origin": fake.server_name, "origin_server_ts": int(time.time() * 1000), "pdus": [deep]},
    )
    # Either the whole transaction is refused as bad JSON or the PDU gets an error of its own.
    assert status in (200, 400), reply
    if status == 200:
        assert reply["pdus"].get(deep_id), reply
    else:
        assert reply["errcode"] in ("M_BAD_JSON", "M_NOT_JSON"), reply
    status, body = _api(
        world["alice"], "GET", f"{V3}/rooms/{quote(world['room_id'])}/event/{quote(deep_id)}"
    )
    assert status == 404, body
    edu = {
        "edu_type": "m.typing",
        "content": {
            "room_id": world["room_id"],
            "user_id": mallory,
            "typing": True,
            "x": _nested(250),
        },
    }
    status, reply = _send_canonical(
        fake,
        dest,
        {
            "origin": fake.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": [],
            "edus": [edu],
        },
    )
    assert status in (200, 400), reply
    if status == 400:
        assert reply["errcode"] in ("M_BAD_JSON", "M_NOT_JSON"), reply
    _everyone_still_fine(world, "nesting")


def test_nul_characters_in_edus_are_harmless(world):
    """Receipts and typing notifications whose IDs carry NUL (which PostgreSQL cannot store
    in a text column) change nothing and do not fail the transaction for anyone."""
    fake, mallory, room_id = world["fake"], world["mallory"], world["room_id"]
    edus = [
        {
            "edu_type": "m.receipt",
            "content": {
                room_id: {
                    "m.read": {
                        mallory: {
                            "event_ids": ["$evil\u0000id"],
                            "data": {"ts": 1, "thread_id": "main\u0000"},
                        }
                    }
                }
            },
        },
        {
            "edu_type": "m.receipt",
            "content": {
                room_id + "\u0000": {"m.read": {mallory: {"event_ids": ["$x"], "data": {"ts": 1}}}}
            },
        },
        {
            "edu_type": "m.typing",
            "content": {"room_id": room_id + "\u0000", "user_id": mallory, "typing": True},
        },
        {"edu_type": "m.typing\u0000", "content": {}},
    ]
    failed_before = _log_count(world["node"], "event=edu_failed")
    _txn, status, reply = fake.send_transaction(world["node"].server_name, [], edus=edus)
    assert status in (200, 400), reply
    if status == 400:
        assert reply.get("errcode"), reply
    _everyone_still_fine(world, "nul-edus")
    # Refused before any database work: no EDU failed with an exception in the node.
    assert _log_count(world["node"], "event=edu_failed") == failed_before, world["node"].log_tail()


def _log_count(node, needle: str) -> int:
    with open(node.log_path, "rb") as fh:
        return fh.read().count(needle.encode())


def test_malformed_and_oversized_requests_get_matrix_errors(world):
    node, fake = world["node"], world["fake"]
    dest = node.server_name
    # Not JSON at all, signed: the signature covers no JSON body, so 400 or 401, never 500.
    status, reply = fake.request(
        dest,
        "PUT",
        "/_matrix/federation/v1/send/notjson",
        sign=False,
        headers={"Content-Type": "application/json"},
    )
    assert status in (400, 401) and reply.get("errcode"), reply
    # A 2 GiB declared body without X-Matrix is refused by its length, before it is read.
    ctx = node.ca.client_context()
    with socket.create_connection(("127.0.0.1", node.fed_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_host(node.server_name)) as tls:
            tls.sendall(
                b"PUT /_matrix/federation/v1/send/huge HTTP/1.1\r\nHost: "
                + dest.encode()
                + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2147483648\r\n\r\n{"
            )
            answer = b""
            try:
                while b"\r\n\r\n" not in answer:
                    data = tls.recv(65536)
                    if not data:
                        break
                    answer += data
                head, _, rest = answer.partition(b"\r\n\r\n")
                length = int(
                    [
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ][0]
                )
                while len(rest) < length:
                    rest += tls.recv(65536)
            except (ssl.SSLError, ConnectionResetError) as exc:
                pytest.fail(f"no answer to the oversized request: {exc!r}")
    assert head.split()[1] == b"413", head
    assert json.loads(rest)["errcode"] == "M_TOO_LARGE"
    _everyone_still_fine(world, "oversized")


def test_room_works_both_ways_afterwards(world):
    room, mallory = world["room"], world["mallory"]
    ev = room.build(
        type="m.room.message", sender=mallory, content={"msgtype": "m.text", "body": "alles gut"}
    )
    _txn, status, reply = room.send([ev.pdu])
    assert status == 200 and reply["pdus"][ev.event_id] == {}, reply
    room.advance(ev)
    rid = quote(world["room_id"])
    status, body = _api(world["alice"], "GET", f"{V3}/rooms/{rid}/event/{quote(ev.event_id)}")
    assert status == 200 and body["content"]["body"] == "alles gut", body
    status, body = _api(
        world["alice"], "POST", f"{V3}/rooms/{rid}/kick", {"user_id": mallory, "reason": "Ende"}
    )
    assert status == 200, body
    status, body = _api(world["bob"], "POST", f"{V3}/rooms/{rid}/leave", {})
    assert status == 200, body
