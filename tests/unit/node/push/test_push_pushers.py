"""Pushers and delivery to a push gateway, as a client and a gateway see them
(client-server API ``/pushers``, https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3pushersset;
Push Gateway API ``/_matrix/push/v1/notify``, https://spec.matrix.org/v1.16/push-gateway-api/)."""

from __future__ import annotations

import logging

import pytest

from node.push.delivery import MAX_ATTEMPTS, backoff_ms
from push_support import ALICE, BOB, CAROL, FakeGateway, PushNode

SET = "/_matrix/client/v3/pushers/set"
GET = "/_matrix/client/v3/pushers"
URL = "https://push.example.org/_matrix/push/v1/notify"


def pusher(pushkey="key1", app_id="org.example.app", **over):
    body = {
        "kind": "http",
        "app_id": app_id,
        "pushkey": pushkey,
        "app_display_name": "Example",
        "device_display_name": "Phone",
        "lang": "en",
        "data": {"url": URL, "custom": "x"},
    }
    body.update(over)
    return body


@pytest.fixture
def node():
    return PushNode()


def test_set_list_and_delete_pushers(node):
    assert node.call("POST", SET, user=BOB, body=pusher(profile_tag="tag")) == (200, {})
    status, body = node.call("GET", GET, user=BOB)
    assert status == 200
    assert body == {
        "pushers": [
            {
                "pushkey": "key1",
                "kind": "http",
                "app_id": "org.example.app",
                "app_display_name": "Example",
                "device_display_name": "Phone",
                "profile_tag": "tag",
                "lang": "en",
                "data": {"url": URL, "custom": "x"},
            }
        ]
    }
    assert node.call("GET", GET, user=ALICE) == (200, {"pushers": []})
    # Setting again updates in place.
    assert node.call("POST", SET, user=BOB, body=pusher(lang="de"))[0] == 200
    assert [p["lang"] for p in node.call("GET", GET, user=BOB)[1]["pushers"]] == ["de"]
    # kind null deletes.
    gone = {"kind": None, "app_id": "org.example.app", "pushkey": "key1"}
    assert node.call("POST", SET, user=BOB, body=gone) == (200, {})
    assert node.call("GET", GET, user=BOB) == (200, {"pushers": []})


def test_append_and_the_same_pushkey_for_another_user(node):
    node.call("POST", SET, user=BOB, body=pusher())
    node.call("POST", SET, user=CAROL, body=pusher(append=True))
    assert len(node.call("GET", GET, user=BOB)[1]["pushers"]) == 1
    # Without append the device now belongs to ALICE only.
    node.call("POST", SET, user=ALICE, body=pusher())
    assert node.call("GET", GET, user=BOB)[1]["pushers"] == []
    assert node.call("GET", GET, user=CAROL)[1]["pushers"] == []
    assert len(node.call("GET", GET, user=ALICE)[1]["pushers"]) == 1


@pytest.mark.parametrize(
    "over,status,errcode",
    [
        ({"data": {"url": "https://push.example.org/other"}}, 400, "M_INVALID_PARAM"),
        (
            {"data": {"url": "ftp://push.example.org/_matrix/push/v1/notify"}},
            400,
            "M_INVALID_PARAM",
        ),
        ({"data": {"url": "https:///_matrix/push/v1/notify"}}, 400, "M_INVALID_PARAM"),
        ({"data": {}}, 400, "M_INVALID_PARAM"),
        ({"data": "x"}, 400, "M_INVALID_PARAM"),
        ({"data": None}, 400, "M_MISSING_PARAM"),
        ({"data": {"url": URL, "format": "full"}}, 400, "M_INVALID_PARAM"),
        ({"kind": "email"}, 400, "M_INVALID_PARAM"),
        ({"app_id": "a" * 65}, 400, "M_INVALID_PARAM"),
        ({"pushkey": "k" * 513}, 400, "M_INVALID_PARAM"),
        ({"lang": None}, 400, "M_MISSING_PARAM"),
        ({"append": "yes"}, 400, "M_INVALID_PARAM"),
        ({"data": {"url": URL, "blob": "x" * 5000}}, 413, "M_TOO_LARGE"),
    ],
)
def test_bad_pushers_are_refused(node, over, status, errcode):
    got_status, body = node.call("POST", SET, user=BOB, body=pusher(**over))
    assert (got_status, body["errcode"]) == (status, errcode)
    assert node.call("GET", GET, user=BOB) == (200, {"pushers": []})


def test_pushers_per_user_are_capped(node):
    for i in range(3):
        assert node.call("POST", SET, user=BOB, body=pusher(f"k{i}"))[0] == 200
    status, body = node.call("POST", SET, user=BOB, body=pusher("k3"))
    assert (status, body["errcode"]) == (400, "M_RESOURCE_LIMIT_EXCEEDED")
    assert node.call("POST", SET, user=BOB, body=pusher("k0"))[0] == 200  # an update


def test_a_notification_reaches_the_gateway_in_the_spec_format(node):
    room = node.room(members=[BOB, CAROL], name="Class 7b")
    node.call("POST", SET, user=BOB, body=pusher())
    event_id = node.send(ALICE, room, "hello bob", **{"m.mentions": {"user_ids": [BOB]}})
    [(url, body)] = node.gateway.requests
    assert url == URL
    note = body["notification"]
    assert note["event_id"] == event_id and note["room_id"] == room
    assert note["type"] == "m.room.message" and note["sender"] == ALICE
    assert note["content"]["body"] == "hello bob"
    assert note["counts"] == {"unread": 1}
    assert note["prio"] == "high"
    assert note["room_name"] == "Class 7b" and note["sender_display_name"] == "Alice"
    [device] = note["devices"]
    assert device["app_id"] == "org.example.app" and device["pushkey"] == "key1"
    assert device["data"] == {"custom": "x"}  # everything but the URL
    assert isinstance(device["pushkey_ts"], int)
    assert device["tweaks"] == {"sound": "default", "highlight": True}
    # The sender's own pushers are never called for their own events; CAROL has none.
    node.call("POST", SET, user=ALICE, body=pusher("alice-key", append=True))
    node.send(ALICE, room, "again")
    assert len(node.gateway.requests) == 2
    assert node.gateway.requests[1][1]["notification"]["devices"][0]["pushkey"] == "key1"


def test_event_id_only_format(node):
    room = node.room(members=[BOB, CAROL], name="Private")
    node.call("POST", SET, user=BOB, body=pusher(data={"url": URL, "format": "event_id_only"}))
    event_id = node.send(ALICE, room, "secret")
    note = node.gateway.requests[0][1]["notification"]
    assert note["event_id"] == event_id and note["room_id"] == room
    assert not {"content", "type", "sender", "room_name", "sender_display_name"} & set(note)
    assert note["devices"][0]["data"] == {"format": "event_id_only"}


def test_rejected_pushkeys_remove_the_pusher(node):
    room = node.room(members=[BOB, CAROL])
    node.call("POST", SET, user=BOB, body=pusher())
    node.gateway.answer = {"rejected": ["key1"]}
    node.send(ALICE, room, "x")
    assert node.call("GET", GET, user=BOB) == (200, {"pushers": []})
    node.send(ALICE, room, "y")
    assert len(node.gateway.requests) == 1


def test_failures_are_retried_with_backoff(node):
    room = node.room(members=[BOB, CAROL])
    node.call("POST", SET, user=BOB, body=pusher())
    node.gateway.down = True
    node.send(ALICE, room, "x")
    assert node.gateway.requests == []
    node.reactor.advance(backoff_ms(1) / 1000 - 0.5)
    assert node.gateway.requests == []
    node.gateway.down = False
    node.gateway.status = 502  # still failing, now with an answer
    node.reactor.advance(1)
    assert len(node.gateway.requests) == 1
    node.gateway.status = 200
    node.reactor.advance(backoff_ms(2) / 1000)
    assert len(node.gateway.requests) == 2
    node.reactor.advance(3600)
    assert len(node.gateway.requests) == 2  # delivered: not sent again
    assert backoff_ms(MAX_ATTEMPTS) == 3_600_000  # the cap


def test_other_client_errors_drop_the_push(node):
    room = node.room(members=[BOB, CAROL])
    node.call("POST", SET, user=BOB, body=pusher())
    node.gateway.status = 400
    node.send(ALICE, room, "x")
    node.reactor.advance(7200)
    assert len(node.gateway.requests) == 1


def test_the_queue_survives_a_restart(node):
    room = node.room(members=[BOB, CAROL])
    node.call("POST", SET, user=BOB, body=pusher())
    node.gateway.down = True
    event_id = node.send(ALICE, room, "while down")
    again = PushNode(db=node.db, gateway=FakeGateway())
    again.push.start()  # the retry is due in two seconds: a timer is set
    again.reactor.advance(backoff_ms(1) / 1000 + 1)
    [(url, body)] = again.gateway.requests
    assert body["notification"]["event_id"] == event_id


def test_the_gateway_client_refuses_private_addresses(caplog):
    from twisted.internet import defer, task

    from federation.transport.errors import AddressRefused
    from federation.transport.ip_ranges import AddressFilter
    from node.push.gateway_client import GatewayClient

    client = GatewayClient(task.Clock(), AddressFilter())
    for url in (
        "http://127.0.0.1:9/_matrix/push/v1/notify",
        "https://[::1]:9/_matrix/push/v1/notify",
        "http://10.1.2.3/_matrix/push/v1/notify",
    ):
        failures: list = []
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            defer.ensureDeferred(client.post(url, {})).addErrback(failures.append)
        assert failures and failures[0].check(AddressRefused), url
        # The operator's log says which client was refused, not "federation".
        assert "event=push_gateway_address_refused" in caplog.text, url
        assert "federation_address_refused" not in caplog.text
