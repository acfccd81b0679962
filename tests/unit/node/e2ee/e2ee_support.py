"""In-process harness for the E2EE area (not a test module).

The real accounts area (tokens, devices, UIA) and its ``ApiResource`` from
``accounts_support``, a real ``RoomService`` and ``SyncService`` on the same in-memory
database, and the E2EE area wired onto the same router: every request goes through the
real HTTP layer (auth, JSON parsing, error rendering) and finishes synchronously.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_NODE_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _NODE_TESTS not in sys.path:
    sys.path.insert(0, _NODE_TESTS)

from types import SimpleNamespace

from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import defer, task

import accounts_support
import schema.e2ee  # noqa: F401 - registers the tables before InlineDB creates them
import schema.rooms  # noqa: F401 - registers the tables before InlineDB creates them
import schema.sync  # noqa: F401 - registers the tables before InlineDB creates them
from accounts_support import PASSWORD, SERVER, V3
from federation.b64 import encode_base64
from federation.keys import SigningKey
from federation.signing import sign_json
from node.accounts import wiring as accounts_wiring
from node.accounts.service import AccountsService
from node.clock import ReactorClock
from node.config import Config
from node.e2ee import wiring as e2ee_wiring
from node.filtering import DEFAULT_FILTER
from node.http.request import Requester
from node.http.router import Router
from node.http.server import ApiResource
from node.stream_tokens import parse_sync_token
from node.sync.handler import SyncParams
from node.sync.notifier import SyncNotifier
from node.sync.service import SyncService
from rooms_support import FakeAccounts, make_service

USERS = ("alice", "bob", "carol", "mallory")


def uid(name: str) -> str:
    return f"@{name}:{SERVER}"


class Device:
    """A client device: its token, ID and ed25519 identity key."""

    def __init__(self, node: "Node", user: str, token: str, device_id: str, seed: int) -> None:
        self.node = node
        self.user_id = uid(user)
        self.token = token
        self.device_id = device_id
        self.key = SigningKey(device_id, bytes([seed]) * 32)

    def device_keys(self) -> dict:
        obj = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                f"ed25519:{self.device_id}": self.key.verify_key.encode(),
                f"curve25519:{self.device_id}": encode_base64(b"c" * 32),
            },
        }
        return sign_json(obj, self.user_id, self.key)

    def otk(self, n: int) -> dict:
        key = {"key": encode_base64(bytes([n % 256]) * 32)}
        return sign_json(key, self.user_id, self.key)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.node.call(method, path, body, token=self.token)

    def sync(self, since: str | None = None) -> dict:
        return self.node.sync(self, since)


class Node:
    def __init__(self, monkeypatch: Any) -> None:
        async def inline(self: Any, fn: Any, *args: Any) -> Any:
            return fn(*args)

        monkeypatch.setattr(AccountsService, "_on_thread", inline)  # password hashing
        self.reactor = task.Clock()
        self.reactor.advance(1_700_000_000)
        self.clock = ReactorClock(self.reactor)
        self.db = InlineDB()
        config = Config(server_name=SERVER, public_baseurl=f"https://{SERVER}")
        config.rate_limits.enabled = False
        self.router = Router()
        ctx = SimpleNamespace(
            config=config,
            reactor=self.reactor,
            clock=self.clock,
            db=self.db,
            router=self.router,
            server_name=SERVER,
        )
        self.accounts = accounts_wiring.wire(ctx)
        self.resource = ApiResource(
            self.router, authenticate=self.accounts.authenticate, max_body_bytes=1 << 20
        )
        self.notifier = SyncNotifier(self.clock)
        self.rooms = make_service(
            self.db, clock=self.clock, notifier=self.notifier, accounts=FakeAccounts(USERS)
        )
        self.e2ee = e2ee_wiring.wire(
            ctx, accounts=self.accounts, rooms=self.rooms, notifier=self.notifier
        )
        self.sync_service = SyncService(
            db=self.db,
            clock=self.clock,
            server_name=SERVER,
            accounts=FakeAccounts(),
            rooms=self.rooms,
            notifier=self.notifier,
        )
        self.sync_service.handler.e2ee = self.e2ee
        self._seed = 1
        for name in USERS:
            result_of(
                defer.ensureDeferred(self.accounts.create_user(name, PASSWORD, "teacher", None))
            )

    call = accounts_support.Node.call
    login = accounts_support.Node.login

    def device(self, user: str) -> Device:
        status, body = self.login(uid(user))
        assert status == 200, body
        self._seed += 1
        return Device(self, user, body["access_token"], body["device_id"], self._seed)

    def sync(self, dev: Device, since: str | None = None) -> dict:
        p = SyncParams(
            requester=Requester(dev.user_id, dev.device_id),
            filter=DEFAULT_FILTER,
            since=parse_sync_token(since) if since else None,
        )
        return result_of(defer.ensureDeferred(self.sync_service.handler.sync(p)))

    def room(self, creator: str, *members: str) -> str:
        self.reactor.advance(0.01)
        room_id = result_of(defer.ensureDeferred(self.rooms.create_room(uid(creator), {})))
        for m in members:
            result_of(
                defer.ensureDeferred(
                    self.rooms.update_membership(uid(creator), room_id, uid(m), "invite")
                )
            )
            result_of(
                defer.ensureDeferred(self.rooms.update_membership(uid(m), room_id, uid(m), "join"))
            )
        return room_id

    def leave(self, user: str, room_id: str) -> None:
        result_of(
            defer.ensureDeferred(
                self.rooms.update_membership(uid(user), room_id, uid(user), "leave")
            )
        )


__all__ = ["PASSWORD", "SERVER", "V3", "Device", "Node", "uid"]
