"""Send-to-device messaging through the real HTTP layer and /sync (client-server API
"Send-to-Device messaging", to_device.yaml)."""

from __future__ import annotations

import pytest

from e2ee_support import V3, Node


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


def send(dev, txn, messages, event_type="m.room_key_request"):
    return dev.call("PUT", V3 + f"/sendToDevice/{event_type}/{txn}", {"messages": messages})


def test_delivered_once_until_acknowledged_and_idempotent_per_txn(node):
    alice, bob = node.device("alice"), node.device("bob")
    first = bob.sync()
    assert first["to_device"] == {"events": []}
    msg = {bob.user_id: {bob.device_id: {"secret": 1}}}
    assert send(alice, "t1", msg) == (200, {})
    assert send(alice, "t1", msg) == (200, {})  # a retry queues nothing
    out = bob.sync(first["next_batch"])
    assert out["to_device"]["events"] == [
        {"sender": alice.user_id, "type": "m.room_key_request", "content": {"secret": 1}}
    ]
    # Not acknowledged yet: the same token gets the message again.
    assert bob.sync(first["next_batch"])["to_device"]["events"] == out["to_device"]["events"]
    # Acknowledged by the next token: gone.
    assert bob.sync(out["next_batch"])["to_device"]["events"] == []
    # A new transaction ID is a new message.
    send(alice, "t2", msg)
    assert len(bob.sync(out["next_batch"])["to_device"]["events"]) == 1


def test_star_reaches_every_device_and_only_the_recipient(node):
    alice, bob1, bob2, carol = (
        node.device("alice"),
        node.device("bob"),
        node.device("bob"),
        node.device("carol"),
    )
    send(alice, "t", {bob1.user_id: {"*": {"n": 1}}, carol.user_id: {"UNKNOWNDEV": {"n": 2}}})
    assert [e["content"] for e in bob1.sync()["to_device"]["events"]] == [{"n": 1}]
    assert [e["content"] for e in bob2.sync()["to_device"]["events"]] == [{"n": 1}]
    assert carol.sync()["to_device"]["events"] == []
    assert alice.sync()["to_device"]["events"] == []


def test_long_poll_wakes_on_a_message(node):
    from support.deferreds import result_of
    from twisted.internet import defer

    from node.filtering import DEFAULT_FILTER
    from node.http.request import Requester
    from node.stream_tokens import parse_sync_token
    from node.sync.handler import SyncParams

    alice, bob = node.device("alice"), node.device("bob")
    since = bob.sync()["next_batch"]
    p = SyncParams(
        requester=Requester(bob.user_id, bob.device_id),
        filter=DEFAULT_FILTER,
        since=parse_sync_token(since),
        timeout_ms=30_000,
    )
    d = defer.ensureDeferred(node.sync_service.handler.sync(p))
    assert not d.called
    send(alice, "t", {bob.user_id: {bob.device_id: {"x": 1}}})
    out = result_of(d)
    assert [e["content"] for e in out["to_device"]["events"]] == [{"x": 1}]


def test_bad_requests(node):
    alice = node.device("alice")
    status, body = alice.call("PUT", V3 + "/sendToDevice/m.x/t", {})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = send(alice, "t", {"bob": {"D": {}}})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = send(alice, "t", {"@bob:school.test": {"D": "text"}})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    servers = {f"@u:s{i}.test": {"D": {}} for i in range(101)}
    status, body = send(alice, "t", servers)
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    many = {f"@u{i}:school.test": {"D": {}} for i in range(10_001)}
    status, body = send(alice, "t", many)
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
