"""matrix-js-sdk (the SDK under Element Web) against one school node.

The SDK is the client most schools would hand out (through Element), so it is the acceptance
test: ``startClient()`` must reach ``PREPARED``, and what users do every day (talk, reply in
threads, edit, react, read, search, follow a room upgrade) must work through it.  Every
warning the SDK logs about a server response fails the module (``test_no_sdk_warnings``,
last).
"""

from __future__ import annotations

import json
import uuid

import pytest

from e2e_helpers import http_request
from jssdk_driver import IN_CI, JsSdk, complaints, unavailable_reason

pytestmark = pytest.mark.e2e

_REASON = unavailable_reason()
if _REASON and not IN_CI:
    pytest.skip(_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def db_backend() -> str:
    """The SDK sees HTTP only: one backend is enough."""
    return "sqlite"


@pytest.fixture(scope="module")
def sdk():
    if _REASON:
        pytest.fail(f"matrix-js-sdk unavailable in CI: {_REASON}")
    driver = JsSdk()
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def people(node, sdk) -> dict[str, dict]:
    """Three users, each with a running SDK client."""
    out = {}
    for name in ("alice", "bob", "carol"):
        login = node.register(f"{name}{uuid.uuid4().hex[:6]}")
        sdk.client(name, node.base_url, login)
        out[name] = login
    return out


def _api(node, login: dict, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    status, _, data = http_request(
        method,
        node.base_url + path,
        body=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {login['access_token']}",
            "Content-Type": "application/json",
        },
    )
    return status, json.loads(data) if data else {}


def test_start_client_reaches_prepared(sdk, people):
    for name in people:
        states = sdk.start(name)
        assert states[-1] == "PREPARED", states


def test_room_timeline_between_users(sdk, people):
    room = sdk.call(
        "alice", "createRoom", {"name": "Class 7B", "invite": [people["bob"]["user_id"]]}
    )
    room_id = room["room_id"]
    sdk.wait_for("bob", room_id, membership="invite")
    sdk.call("bob", "joinRoom", room_id)
    sent = sdk.call("alice", "sendTextMessage", room_id, "Homework is on page 42")
    view = sdk.wait_for("bob", room_id, eventId=sent["event_id"])
    assert view["name"] == "Class 7B"
    bodies = [e["content"].get("body") for e in view["timeline"]]
    assert "Homework is on page 42" in bodies


def test_threads_edits_and_reactions(sdk, people):
    room_id = sdk.call("alice", "createRoom", {"invite": [people["bob"]["user_id"]]})["room_id"]
    sdk.wait_for("bob", room_id, membership="invite")
    sdk.call("bob", "joinRoom", room_id)
    root = sdk.call("alice", "sendTextMessage", room_id, "Trip on Friday?")["event_id"]
    sdk.wait_for("bob", room_id, eventId=root)
    sdk.call(
        "bob",
        "sendMessage",
        room_id,
        root,
        {
            "msgtype": "m.text",
            "body": "Yes, at 9",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": True},
        },
    )
    view = sdk.wait_for("alice", room_id, threads=1)
    assert [t["id"] for t in view["threads"]] == [root]
    edit_of = sdk.call("alice", "sendTextMessage", room_id, "Bring luch")["event_id"]
    sdk.call(
        "alice",
        "sendMessage",
        room_id,
        {
            "msgtype": "m.text",
            "body": "* Bring lunch",
            "m.new_content": {"msgtype": "m.text", "body": "Bring lunch"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": edit_of},
        },
    )
    sdk.call(
        "bob",
        "sendEvent",
        room_id,
        "m.reaction",
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": edit_of, "key": "👍"}},
    )
    view = sdk.wait_for("bob", room_id, body="* Bring lunch")
    original = next(e for e in view["timeline"] if e["event_id"] == edit_of)
    assert original["replaced_by"] is not None


def test_notification_counts_follow_push_rules(sdk, people, node):
    # Three members: in a room of two, .m.rule.room_one_to_one would notify first.
    invite = [people["carol"]["user_id"], people["bob"]["user_id"]]
    room_id = sdk.call("alice", "createRoom", {"invite": invite})["room_id"]
    for name in ("carol", "bob"):
        sdk.wait_for(name, room_id, membership="invite")
        sdk.call(name, "joinRoom", room_id)
    first = sdk.call("alice", "sendTextMessage", room_id, "one")["event_id"]
    sdk.wait_for("carol", room_id, eventId=first, unreadTotal=1)
    # Carol turns off notifications for ordinary messages; the next message does not count.
    sdk.call("carol", "setPushRuleEnabled", "global", "underride", ".m.rule.message", False)
    second = sdk.call("alice", "sendTextMessage", room_id, "two")["event_id"]
    view = sdk.wait_for("carol", room_id, eventId=second)
    assert view["unread"]["total"] == 1
    # Reading clears the count.
    status, _ = _api(
        node,
        people["carol"],
        "POST",
        f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{second}",
        {},
    )
    assert status == 200
    sdk.wait_for("carol", room_id, unreadTotal=0)


def test_search_finds_messages(sdk, people):
    room_id = sdk.call("alice", "createRoom", {"name": "search"})["room_id"]
    word = "zebra" + uuid.uuid4().hex[:6]
    sdk.call("alice", "sendTextMessage", room_id, f"the {word} crossed the road")
    result = sdk.call("alice", "searchRoomEvents", {"term": word})
    assert result["count"] == 1
    assert len(result["results"]) == 1


def test_room_upgrade_followed(sdk, people):
    room_id = sdk.call("alice", "createRoom", {"invite": [people["bob"]["user_id"]]})["room_id"]
    sdk.wait_for("bob", room_id, membership="invite")
    sdk.call("bob", "joinRoom", room_id)
    new = sdk.call("alice", "upgradeRoom", room_id, "11")
    new_room = new["replacement_room"]
    old = sdk.wait_for("bob", room_id, tombstone=True)
    assert old["tombstone_replacement"] == new_room
    sdk.call("bob", "joinRoom", new_room)
    assert sdk.wait_for("bob", new_room, membership="join")["membership"] == "join"


def test_no_sdk_warnings(sdk, people):
    found = complaints(sdk)
    assert found == [], "\n".join(found)
