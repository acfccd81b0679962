"""E2E: push rules, notification counts and a push gateway on loopback, driven by matrix-nio
clients against a real node (client-server API "Push Notifications"; Push Gateway API).

The gateway is a small HTTP server in the test process that records what it receives; the
node is told it may reach loopback (``push.ip_range_whitelist``), which a real node must
not do by default.  SQLite only: the push area's SQL is the same on both backends.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from nio import PushRulesEvent, RoomSendResponse, SyncResponse
from nio.api import PushRuleKind

from e2e_helpers import api, create_room_with, run, text

GIVE_UP_S = 30.0


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"


class Gateway:
    """A push gateway: records each notify request's JSON body."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with gateway.lock:
                    gateway.received.append({"path": self.path, "body": body})
                answer = json.dumps({"rejected": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/_matrix/push/v1/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, event_id: str) -> dict:
        deadline = time.monotonic() + GIVE_UP_S
        while time.monotonic() < deadline:
            with self.lock:
                for item in self.received:
                    if item["body"]["notification"].get("event_id") == event_id:
                        return item
            time.sleep(0.1)
        raise AssertionError(f"no push for {event_id}; got {self.received}")


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.server.shutdown()


@pytest.fixture(scope="module")
def push_node(node_factory: Any) -> Any:
    return node_factory(push={"ip_range_whitelist": ["127.0.0.1/32"]})


def _counts(resp: Any, room_id: str) -> tuple[int, int]:
    room = resp.rooms.join[room_id]
    unread = room.unread_notifications
    return unread.notification_count, unread.highlight_count


def test_push_rules_counts_and_gateway(push_node: Any, gateway: Gateway) -> None:
    async def scenario() -> None:
        anna = await push_node.new_client("anna")
        ben = await push_node.new_client("ben")
        carl = await push_node.new_client("carl")
        try:
            # The initial sync carries m.push_rules with the server-default rules.
            first = await ben.sync(timeout=0, full_state=True)
            assert isinstance(first, SyncResponse), first
            rules = [e for e in first.account_data_events if isinstance(e, PushRulesEvent)]
            assert rules, first.account_data_events
            assert any(r.id == ".m.rule.master" for r in rules[0].global_rules.override)

            room_id = await create_room_with(anna, ben, carl, name="Push")
            status, body = api(
                push_node,
                "POST",
                "/_matrix/client/v3/pushers/set",
                token=ben.access_token,
                json_body={
                    "kind": "http",
                    "app_id": "org.parta.e2e",
                    "pushkey": "ben-device",
                    "app_display_name": "E2E",
                    "device_display_name": "Ben's phone",
                    "lang": "en",
                    "data": {"url": gateway.url},
                },
            )
            assert status == 200, body
            await ben.sync(timeout=0)

            sent = await anna.room_send(
                room_id,
                "m.room.message",
                {**text("Ben, look!"), "m.mentions": {"user_ids": [ben.user_id]}},
            )
            assert isinstance(sent, RoomSendResponse), sent
            push = gateway.wait_for(sent.event_id)
            assert push["path"] == "/_matrix/push/v1/notify"
            note = push["body"]["notification"]
            assert note["room_id"] == room_id and note["sender"] == anna.user_id
            assert note["type"] == "m.room.message" and note["content"]["body"] == "Ben, look!"
            assert note["counts"] == {"unread": 1}
            [device] = note["devices"]
            assert device["app_id"] == "org.parta.e2e" and device["pushkey"] == "ben-device"
            assert "url" not in device["data"]
            assert device["tweaks"].get("highlight") is True

            resp = await ben.sync(timeout=0)
            assert isinstance(resp, SyncResponse), resp
            assert _counts(resp, room_id) == (1, 1)

            # Ben turns plain messages off: the next message changes nothing for him.
            off = await ben.enable_pushrule(
                "global", PushRuleKind.underride, ".m.rule.message", False
            )
            assert type(off).__name__ == "EnablePushRuleResponse", off
            quiet = await anna.room_send(room_id, "m.room.message", text("just chatting"))
            assert isinstance(quiet, RoomSendResponse), quiet
            resp = await ben.sync(timeout=0)
            assert _counts(resp, room_id) == (1, 1)
            changed = [e for e in resp.account_data_events if isinstance(e, PushRulesEvent)]
            assert changed, "the rule change is delivered as m.push_rules"
            # ... while Carl, with the default rules, counts both messages.
            resp = await carl.sync(timeout=0)
            assert _counts(resp, room_id) == (2, 0)

            # A read receipt clears Ben's count; /notifications still lists the mention.
            assert await ben.room_read_markers(room_id, quiet.event_id, quiet.event_id)
            resp = await ben.sync(timeout=0)
            assert _counts(resp, room_id) == (0, 0)
            status, listing = api(
                push_node, "GET", "/_matrix/client/v3/notifications", token=ben.access_token
            )
            assert status == 200
            mention = [
                n for n in listing["notifications"] if n["event"]["event_id"] == sent.event_id
            ]
            assert mention and mention[0]["read"] is True and mention[0]["room_id"] == room_id
        finally:
            for client in (anna, ben, carl):
                await client.close()

    run(scenario())
