"""Every operation of the client-server API, walked against a running node.

The table (``tests/conformance/client_server_ops.json``) is written from the spec's own API
definitions by ``tests/conformance/gen_ops_table.py``: method, path, the statuses the spec
documents and the required fields of each 200 answer.  For every operation not listed in
``docs/spec-coverage.md`` as left out (``EXCLUDED`` below, with the reason), this module sends
a real request with real IDs and checks that

- the route exists (no ``404 M_UNRECOGNIZED`` / ``405``) and nothing fails (no 5xx);
- the status is the one a correct server gives for that request (``EXPECT``, default 200)
  and one the spec documents for the operation;
- a 200 answer carries every field the spec marks required.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
import uuid
from typing import Any, Iterator
from urllib.parse import quote, urlencode

import pytest
from conformance.exclusions import EXCLUDED
from conformance.write_coverage_doc import render
from support.images import png

from e2e_helpers import DEFAULT_PASSWORD, http_request

pytestmark = pytest.mark.e2e

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
with open(os.path.join(ROOT, "tests", "conformance", "client_server_ops.json")) as _fh:
    TABLE: list[dict] = json.load(_fh)


# The status a correct server answers to the request this module sends, where not 200 (a set
# where the spec leaves the order of checks open).
EXPECT: dict[tuple[str, str], int | set[int]] = {
    ("POST", "/_matrix/client/v3/account/deactivate"): 401,  # UIA: flows first
    ("POST", "/_matrix/client/v3/register"): 401,
    ("POST", "/_matrix/client/v3/account/password"): 401,
    ("POST", "/_matrix/client/v3/account/3pid/add"): 401,
    ("POST", "/_matrix/client/v1/login/get_token"): 401,
    ("DELETE", "/_matrix/client/v3/devices/{deviceId}"): 401,
    ("POST", "/_matrix/client/v3/delete_devices"): 401,
    ("GET", "/_matrix/client/v1/auth_metadata"): 404,  # no OAuth 2.0 API: the spec's answer
    ("GET", "/.well-known/matrix/policy_server"): 404,  # no policy server
    ("GET", "/_matrix/client/v3/account/3pid"): 200,
    ("POST", "/_matrix/client/v3/account/3pid"): {400, 403},  # needs an identity server
    ("POST", "/_matrix/client/v3/account/3pid/bind"): {400, 403},
    ("POST", "/_matrix/client/v3/account/3pid/delete"): 404,  # not an address of the user
    ("POST", "/_matrix/client/v3/account/3pid/unbind"): 200,
    ("POST", "/_matrix/client/v3/knock/{roomIdOrAlias}"): 200,
    ("POST", "/_matrix/client/v3/account/3pid/email/requestToken"): 400,  # no such 3PID mail
    ("POST", "/_matrix/client/v3/account/password/email/requestToken"): 400,
    ("POST", "/_matrix/client/v3/register/email/requestToken"): 400,  # no mail configured
    ("GET", "/_matrix/client/v1/media/preview_url"): 200,
    ("GET", "/_matrix/media/v3/preview_url"): 200,
    ("GET", "/_matrix/client/v3/thirdparty/protocol/{protocol}"): 404,  # none registered
    ("GET", "/_matrix/client/v3/thirdparty/location/{protocol}"): 404,
    ("GET", "/_matrix/client/v3/thirdparty/user/{protocol}"): 404,
    ("GET", "/_matrix/client/v3/events/{eventId}"): 200,
    ("PUT", "/_matrix/media/v3/upload/{serverName}/{mediaId}"): 200,
    # The unauthenticated media paths are frozen (content-repo.yaml; client-server API
    # "Content repository", v1.11): 404 for media, as the spec lets servers answer.
    ("GET", "/_matrix/media/v3/download/{serverName}/{mediaId}"): 404,
    ("GET", "/_matrix/media/v3/download/{serverName}/{mediaId}/{fileName}"): 404,
    ("GET", "/_matrix/media/v3/thumbnail/{serverName}/{mediaId}"): 404,
    ("PUT", "/_matrix/client/v1/admin/suspend/{userId}"): 403,  # alice is no server admin
    ("PUT", "/_matrix/client/v1/admin/lock/{userId}"): 403,
    ("GET", "/_matrix/client/v1/admin/suspend/{userId}"): 403,
    ("GET", "/_matrix/client/v1/admin/lock/{userId}"): 403,
    ("POST", "/_matrix/client/v3/keys/signatures/upload"): 200,
}

_KEY = "nE6sWXmDh6B5n8fJMRD0gDsnBb6BvmjUGgnYJeOsDAs"  # an ed25519 public key, unpadded Base64
_BACKUP = {
    "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
    "auth_data": {"public_key": "abcdefg", "signatures": {}},
}
_SESSION = {
    "first_message_index": 1,
    "forwarded_count": 0,
    "is_verified": True,
    "session_data": {"ephemeral": "base64+ephemeral+key", "ciphertext": "x", "mac": "y"},
}

# Request bodies where the spec's example does not fit this node's real IDs.
BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"): _SESSION,
    ("POST", "/_matrix/client/v3/keys/device_signing/upload"): {
        "master_key": {
            "user_id": "{alice}",
            "usage": ["master"],
            "keys": {"ed25519:" + _KEY: _KEY},
        }
    },
    ("PUT", "/_matrix/client/v3/room_keys/keys/{roomId}"): {"sessions": {"sess1": _SESSION}},
    ("PUT", "/_matrix/client/v3/room_keys/keys"): {
        "rooms": {"{room}": {"sessions": {"sess1": _SESSION}}}
    },
    ("POST", "/_matrix/client/v3/account/password"): {
        "new_password": "a new password for the conformance walk",
        "logout_devices": False,
    },
    ("POST", "/_matrix/client/v3/register"): {
        "username": "{fresh_localpart}",
        "password": "a password for the conformance walk",
    },
    ("POST", "/_matrix/client/v3/account/3pid/add"): {"client_secret": "d0nt", "sid": "abcd"},
    ("POST", "/_matrix/client/v3/account/3pid/delete"): {
        "medium": "email",
        "address": "nobody@school.example",
    },
    ("POST", "/_matrix/client/v3/account/3pid/unbind"): {
        "medium": "email",
        "address": "nobody@school.example",
    },
    ("POST", "/_matrix/client/v3/delete_devices"): {"devices": ["{deviceId}"]},
    ("PUT", "/_matrix/client/v3/user/{userId}/account_data/{type}"): {"a": 1},
    ("PUT", "/_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}"): {"a": 1},
    ("POST", "/_matrix/client/v3/createRoom"): {"name": "conformance"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/invite"): {"user_id": "{carol}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/kick"): {"user_id": "{dave}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/ban"): {"user_id": "{erin}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/unban"): {"user_id": "{erin}"},
    ("POST", "/_matrix/client/v3/login"): {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "{alice}"},
        "password": DEFAULT_PASSWORD,
    },
    ("POST", "/_matrix/client/v3/search"): {
        "search_categories": {"room_events": {"search_term": "conformance"}}
    },
    ("POST", "/_matrix/client/v3/user/{userId}/filter"): {"room": {"timeline": {"limit": 5}}},
    ("POST", "/_matrix/client/v3/pushers/set"): {
        "kind": "http",
        "app_id": "org.example.conformance",
        "pushkey": "pk1",
        "app_display_name": "c",
        "device_display_name": "d",
        "lang": "en",
        "data": {"url": "https://push.example.org/_matrix/push/v1/notify"},
    },
    ("PUT", "/_matrix/client/v3/pushrules/global/{kind}/{ruleId}"): {
        "actions": ["notify"],
        "pattern": "lunch*",
    },
    ("PUT", "/_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled"): {"enabled": True},
    ("PUT", "/_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions"): {"actions": []},
    ("PUT", "/_matrix/client/v3/rooms/{roomId}/typing/{userId}"): {"typing": False},
    ("PUT", "/_matrix/client/v3/presence/{userId}/status"): {"presence": "online"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/upgrade"): {"new_version": "11"},
    ("POST", "/_matrix/client/v3/refresh"): {"refresh_token": "{refresh_token}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/report/{eventId}"): {"reason": "spam"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/report"): {"reason": "spam"},
    ("POST", "/_matrix/client/v3/users/{userId}/report"): {"reason": "spam"},
    ("PUT", "/_matrix/client/v3/directory/list/room/{roomId}"): {"visibility": "public"},
    ("PUT", "/_matrix/client/v3/directory/room/{roomAlias}"): {"room_id": "{room}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/read_markers"): {"m.fully_read": "{event}"},
    ("PUT", "/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}"): {"reason": "x"},
    ("POST", "/_matrix/client/v3/publicRooms"): {"limit": 5},
    ("POST", "/_matrix/client/v3/user_directory/search"): {"search_term": "bob"},
    ("POST", "/_matrix/client/v3/account/3pid/email/requestToken"): {
        "client_secret": "monkeys_are_GREAT",
        "email": "nobody@school.example",
        "send_attempt": 1,
    },
    ("POST", "/_matrix/client/v3/account/password/email/requestToken"): {
        "client_secret": "monkeys_are_GREAT",
        "email": "nobody@school.example",
        "send_attempt": 1,
    },
    ("POST", "/_matrix/client/v3/register/email/requestToken"): {
        "client_secret": "monkeys_are_GREAT",
        "email": "new.parent@school.example",
        "send_attempt": 1,
    },
    ("POST", "/_matrix/client/v3/keys/query"): {"device_keys": {"{alice}": []}},
    ("POST", "/_matrix/client/v3/keys/claim"): {"one_time_keys": {}},
    ("POST", "/_matrix/client/v3/keys/upload"): {},
    ("POST", "/_matrix/client/v3/keys/signatures/upload"): {},
    ("PUT", "/_matrix/client/v3/sendToDevice/{eventType}/{txnId}"): {
        "messages": {"{bob}": {"*": {"hello": "world"}}}
    },
    ("POST", "/_matrix/client/v3/room_keys/version"): {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": {"public_key": "abcdefg", "signatures": {}},
    },
    ("PUT", "/_matrix/client/v3/room_keys/version/{version}"): {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": {"public_key": "abcdefg", "signatures": {}},
        "version": "{backup_version}",
    },
}

# Query strings an operation needs.
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"): {
        "version": "{backup_version}"
    },
    ("GET", "/_matrix/client/v3/room_keys/keys/{roomId}"): {"version": "{backup_version}"},
    ("GET", "/_matrix/client/v3/room_keys/keys"): {"version": "{backup_version}"},
    ("PUT", "/_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"): {
        "version": "{backup_version}"
    },
    ("PUT", "/_matrix/client/v3/room_keys/keys/{roomId}"): {"version": "{backup_version}"},
    ("PUT", "/_matrix/client/v3/room_keys/keys"): {"version": "{backup_version}"},
    ("DELETE", "/_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}"): {
        "version": "{backup_version}"
    },
    ("DELETE", "/_matrix/client/v3/room_keys/keys/{roomId}"): {"version": "{backup_version}"},
    ("DELETE", "/_matrix/client/v3/room_keys/keys"): {"version": "{backup_version}"},
    ("GET", "/_matrix/client/v1/mutual_rooms"): {"user_id": "{bob}"},
    ("GET", "/_matrix/client/v1/rooms/{roomId}/timestamp_to_event"): {"ts": "0", "dir": "f"},
    ("GET", "/_matrix/client/v3/rooms/{roomId}/messages"): {"dir": "b"},
    ("GET", "/_matrix/client/v3/register/available"): {"username": "{fresh_localpart}"},
    ("GET", "/_matrix/client/v1/register/m.login.registration_token/validity"): {"token": "nope"},
    ("GET", "/_matrix/client/v1/media/preview_url"): {"url": "{page}"},
    ("GET", "/_matrix/media/v3/preview_url"): {"url": "{page}"},
    ("GET", "/_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}"): {
        "width": "32",
        "height": "32",
    },
    ("GET", "/_matrix/media/v3/thumbnail/{serverName}/{mediaId}"): {
        "width": "32",
        "height": "32",
    },
    ("GET", "/_matrix/client/v3/events"): {"timeout": "0"},
    ("GET", "/_matrix/client/v3/sync"): {"timeout": "0"},
    ("GET", "/_matrix/client/v3/keys/changes"): {"from": "s0", "to": "{sync_token}"},
    ("GET", "/_matrix/client/v3/thirdparty/location"): {"alias": "#x:irc.example"},
    ("GET", "/_matrix/client/v3/thirdparty/user"): {"userid": "@x:irc.example"},
}

# Path values other than the shared ones, for operations that change what others rely on.
PATH_VALUES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/_matrix/client/v3/rooms/{roomId}/leave"): {"roomId": "{side_room}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/forget"): {"roomId": "{side_room}"},
    ("POST", "/_matrix/client/v3/rooms/{roomId}/upgrade"): {"roomId": "{upgrade_room}"},
    ("POST", "/_matrix/client/v3/knock/{roomIdOrAlias}"): {"roomIdOrAlias": "{knock_room}"},
    ("PUT", "/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}"): {
        "eventId": "{redact_event}"
    },
    ("GET", "/_matrix/client/v3/directory/room/{roomAlias}"): {"roomAlias": "{alias}"},
    ("DELETE", "/_matrix/client/v3/room_keys/version/{version}"): {
        "version": "{spare_backup_version}"
    },
    ("DELETE", "/_matrix/client/v3/pushrules/global/{kind}/{ruleId}"): {"ruleId": "dinner"},
    ("PUT", "/_matrix/media/v3/upload/{serverName}/{mediaId}"): {"mediaId": "{created_media}"},
    ("DELETE", "/_matrix/client/v3/directory/room/{roomAlias}"): {"roomAlias": "{old_alias}"},
}

# Operations run as another user, so that they do not change what the walk relies on.
WHO: dict[tuple[str, str], str] = {
    # A new backup version becomes the current one: alice's stays as the setup made it.
    ("POST", "/_matrix/client/v3/room_keys/version"): "bob",
}

# Operations that end a session or account: run with a throw-away user's token.
THROWAWAY = {
    ("POST", "/_matrix/client/v3/logout"),
    ("POST", "/_matrix/client/v3/logout/all"),
    ("POST", "/_matrix/client/v3/account/deactivate"),
    ("POST", "/_matrix/client/v3/refresh"),
}


def _op_id(op: dict) -> str:
    return f"{op['method']} {op['path']}"


def _key(op: dict) -> tuple[str, str]:
    return op["method"], op["path"].strip()


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"


class World:
    """Real IDs for every path parameter, made through the API itself."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.users = {n: node.register(f"{n}{uuid.uuid4().hex[:6]}") for n in _NAMES}
        alice = self.users["alice"]
        self.room = self.call(
            alice, "POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"}
        )[1]["room_id"]
        for name in ("bob", "dave"):
            self.call(self.users[name], "POST", f"/_matrix/client/v3/join/{quote(self.room)}", {})
        self.event = self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(self.room)}/send/m.room.message/t{uuid.uuid4().hex}",
            {"msgtype": "m.text", "body": "conformance"},
        )[1]["event_id"]
        status, _, data = http_request(
            "POST",
            node.base_url + "/_matrix/media/v3/upload?filename=a.png",
            body=_PNG,
            headers={
                "Authorization": f"Bearer {alice['access_token']}",
                "Content-Type": "image/png",
            },
        )
        assert status == 200, data
        self.media_server, self.media_id = json.loads(data)["content_uri"][len("mxc://") :].split(
            "/"
        )
        created = self.call(alice, "POST", "/_matrix/media/v1/create", {})[1]["content_uri"]
        self.created_media = created.rsplit("/", 1)[1]
        self.alias = f"#conf{uuid.uuid4().hex[:6]}:{node.server_name}"
        self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/directory/room/{quote(self.alias)}",
            {"room_id": self.room},
        )
        self.filter_id = self.call(
            alice, "POST", f"/_matrix/client/v3/user/{quote(alice['user_id'])}/filter", {}
        )[1]["filter_id"]
        self.sync_token = self.call(alice, "GET", "/_matrix/client/v3/sync?timeout=0")[1][
            "next_batch"
        ]
        # Two backups: the older one is the one DELETE removes, the newer one stays current.
        self.spare_backup_version = self.call(
            alice, "POST", "/_matrix/client/v3/room_keys/version", _BACKUP
        )[1]["version"]
        self.backup_version = self.call(
            alice, "POST", "/_matrix/client/v3/room_keys/version", _BACKUP
        )[1]["version"]
        status, answer = self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/room_keys/keys/{quote(self.room)}/sess1?version={self.backup_version}",
            _SESSION,
        )
        assert status == 200, answer
        for rule in ("lunch", "dinner"):
            self.call(
                alice,
                "PUT",
                f"/_matrix/client/v3/pushrules/global/content/{rule}",
                {"actions": ["notify"], "pattern": f"{rule}*"},
            )
        uid = quote(alice["user_id"])
        self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/user/{uid}/account_data/org.example.conformance",
            {"a": 1},
        )
        self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/user/{uid}/rooms/{quote(self.room)}/account_data/org.example.conformance",
            {"a": 1},
        )
        bob = self.users["bob"]
        self.knock_room = self.call(
            bob,
            "POST",
            "/_matrix/client/v3/createRoom",
            {"initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}]},
        )[1]["room_id"]
        self.side_room = self.call(
            bob, "POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat"}
        )[1]["room_id"]
        self.call(alice, "POST", f"/_matrix/client/v3/join/{quote(self.side_room)}", {})
        self.upgrade_room = self.call(alice, "POST", "/_matrix/client/v3/createRoom", {})[1][
            "room_id"
        ]
        self.redact_event = self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(self.room)}/send/m.room.message/r{uuid.uuid4().hex}",
            {"msgtype": "m.text", "body": "oops"},
        )[1]["event_id"]
        self.old_alias = f"#old{uuid.uuid4().hex[:6]}:{node.server_name}"
        self.call(
            alice,
            "PUT",
            f"/_matrix/client/v3/directory/room/{quote(self.old_alias)}",
            {"room_id": self.room},
        )

    def call(self, who: dict, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if who:
            headers["Authorization"] = f"Bearer {who['access_token']}"
        status, _, data = http_request(
            method,
            self.node.base_url + path,
            body=json.dumps(body).encode() if body is not None else None,
            headers=headers,
        )
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data

    def values(self, who: dict) -> dict[str, str]:
        return {
            "userId": who["user_id"],
            "roomId": self.room,
            "eventId": self.event,
            "roomAlias": f"#new{uuid.uuid4().hex[:6]}:{self.node.server_name}",
            "roomIdOrAlias": self.room,
            "type": "org.example.conformance",
            "kind": "content",
            "ruleId": "lunch",
            "tag": "u.work",
            "deviceId": who["device_id"],
            "filterId": self.filter_id,
            "serverName": self.media_server,
            "mediaId": self.media_id,
            "txnId": uuid.uuid4().hex,
            "eventType": "m.room.message",
            "stateKey": "",
            "receiptType": "m.read",
            "version": self.backup_version,
            "sessionId": "sess1",
            "protocol": "irc",
            "relType": "m.annotation",
            "keyName": "displayname",
            "fileName": "a.png",
            "networkId": "irc",
            "appserviceId": "none",
            "idpId": "none",
            "alice": self.users["alice"]["user_id"],
            "bob": self.users["bob"]["user_id"],
            "carol": self.users["carol"]["user_id"],
            "dave": self.users["dave"]["user_id"],
            "erin": self.users["erin"]["user_id"],
            "room": self.room,
            "event": self.event,
            "sync_token": self.sync_token,
            "backup_version": self.backup_version,
            "fresh_localpart": f"fresh{uuid.uuid4().hex[:6]}",
            "refresh_token": who.get("refresh_token", "none"),
            "side_room": self.side_room,
            "created_media": self.created_media,
            "page": getattr(self, "page", ""),
            "spare_backup_version": self.spare_backup_version,
            "knock_room": self.knock_room,
            "upgrade_room": self.upgrade_room,
            "redact_event": self.redact_event,
            "alias": self.alias,
            "old_alias": self.old_alias,
        }


_NAMES = ("alice", "bob", "carol", "dave", "erin")

_PNG = png(64, 64)


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        value = value.replace("@alice:example.com", values["alice"])
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {_fill(k, values): _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


class _Page(http.server.BaseHTTPRequestHandler):
    """A web page for the URL preview operations to read."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        body = b'<html><head><meta property="og:title" content="Timetable"></head></html>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web_page() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/timetable"
    server.shutdown()


@pytest.fixture(scope="module")
def world(node_factory, web_page) -> World:
    """A node with the optional parts switched on (TURN, support contacts, presence, URL
    previews of the loopback page), so their operations answer with content."""
    node = node_factory(
        voip={"turn_uris": ["turn:127.0.0.1:3478?transport=udp"], "turn_shared_secret": "s3"},
        support={"contacts": [{"email_address": "it@school.example", "role": "m.role.admin"}]},
        presence={"enabled": True, "roles": ["pupil", "teacher", "director"]},
        media={"url_previews": True, "url_preview_ip_range_whitelist": ["127.0.0.1/32"]},
    )
    world = World(node)
    world.page = web_page
    return world


def test_coverage_count_and_doc():
    """At least 150 of the spec's operations are walked; the rest are listed with reasons in
    docs/spec-coverage.md, which is exactly what write_coverage_doc.py writes."""
    keys = {_key(op) for op in TABLE}
    assert set(EXCLUDED) <= keys
    assert len(TABLE) - len(EXCLUDED) >= 150
    with open(os.path.join(ROOT, "docs", "spec-coverage.md"), encoding="utf-8") as fh:
        assert fh.read() == render(), "run tests/conformance/write_coverage_doc.py"


@pytest.mark.parametrize(
    "op",
    [op for op in TABLE if _key(op) not in EXCLUDED],
    ids=[_op_id(op) for op in TABLE if _key(op) not in EXCLUDED],
)
def test_operation(world: World, op: dict) -> None:
    key = _key(op)
    who = world.users[WHO.get(key, "alice")]
    if key in THROWAWAY:
        user_id = world.node.register(f"temp{uuid.uuid4().hex[:6]}")["user_id"]
        login_body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": DEFAULT_PASSWORD,
            "refresh_token": True,
        }
        status, who = world.call({}, "POST", "/_matrix/client/v3/login", login_body)
        assert status == 200, who
    values = world.values(who)
    values.update(_fill(PATH_VALUES.get(key, {}), values))
    path = re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe=""), op["path"].strip())
    query = _fill(QUERIES.get(key, {}), values)
    if query:
        path += "?" + urlencode(query)
    body = BODIES.get(key, op["request_example"])
    if body is None and op["method"] in ("PUT", "POST"):
        body = {}
    body = _fill(body, values)
    status, answer = world.call(
        who if op["auth"] or key in THROWAWAY else {}, op["method"], path, body
    )
    errcode = answer.get("errcode") if isinstance(answer, dict) else None
    assert not (status == 404 and errcode == "M_UNRECOGNIZED" and key not in EXPECT), (
        f"not implemented: {status} {answer}"
    )
    assert status != 405, "method not allowed"
    assert status < 500, f"server error: {status} {answer}"
    expected = EXPECT.get(key, 200)
    assert status in (expected if isinstance(expected, set) else {expected}), f"{status} {answer}"
    # Errors are allowed on any endpoint (client-server API "Standard error response"); a
    # success must be one the operation documents.
    assert status >= 400 or status in op["statuses"], (
        f"{status} not documented for this operation ({op['statuses']})"
    )
    if status == 200 and isinstance(answer, dict):
        missing = [f for f in op["ok_required"] if f not in answer]
        assert missing == [], f"required fields missing: {missing} in {answer}"
