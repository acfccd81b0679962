"""An in-process node for the push area's tests (not a test module): a real
``RoomService``, ``SyncService`` and ``PushService`` wired as ``node/app.py`` wires them, on
in-memory SQLite whose ``db.run`` completes synchronously, with a ``task.Clock``; and a
caller of the push endpoints through the real router and request objects."""

from __future__ import annotations

import os
import sys

_NODE_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _NODE_TESTS not in sys.path:
    sys.path.insert(0, _NODE_TESTS)

import orjson
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import task

import schema.push  # noqa: F401 - registers the push tables before InlineDB creates them
import schema.sync  # noqa: F401 - registers the sync tables
from federation.errors import MatrixError
from node.clock import ReactorClock
from node.filtering import DEFAULT_FILTER, parse_filter
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.push.api import register_all as register_push
from node.push.service import PushService
from node.stream_tokens import parse_sync_token
from node.sync.handler import SyncParams
from node.sync.notifier import SyncNotifier
from node.sync.push_link import attach_push
from node.sync.service import SyncService
from rooms_support import SERVER, FakeAccounts, make_service, uid

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
USERS = ("alice", "bob", "carol", "dave")


class FakeGateway:
    """A push gateway double: records every request; answers ``status`` / ``answer``, or
    raises ``ConnectionRefusedError`` when ``down``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.status = 200
        self.answer: dict = {"rejected": []}
        self.down = False

    async def post(self, url, body):
        if self.down:
            raise ConnectionRefusedError("gateway down")
        self.requests.append((url, body))
        return self.status, self.answer


class PushNode:
    def __init__(self, db: InlineDB | None = None, gateway: FakeGateway | None = None) -> None:
        self.reactor = task.Clock()
        self.reactor.advance(1_700_000_000)
        self.clock = ReactorClock(self.reactor)
        self.db = db or InlineDB()
        self.notifier = SyncNotifier(self.clock)
        self.rooms = make_service(
            self.db, clock=self.clock, notifier=self.notifier, accounts=FakeAccounts(USERS)
        )
        self.gateway = gateway or FakeGateway()
        self.push = PushService(db=self.db, clock=self.clock, server_name=SERVER, max_pushers=3)
        self.push.rules.load_sync()
        self.push.pushers.load_sync()
        self.push.attach_rooms(self.rooms, gateway=self.gateway)
        self.sync = SyncService(
            db=self.db,
            clock=self.clock,
            server_name=SERVER,
            accounts=FakeAccounts(USERS),
            rooms=self.rooms,
            notifier=self.notifier,
        )
        attach_push(self.sync, self.push)
        self.router = Router()
        register_push(self.router, self.push)

    # --- HTTP-shaped calls ------------------------------------------------------------------
    def call(self, method, path, user=ALICE, body=None, query=None):
        """(status, body) of the endpoint; Matrix errors as (status, {"errcode", "error"})."""
        route, params, _ = self.router.match(method, path)
        if route is None:
            return 404, {"errcode": "M_UNRECOGNIZED"}
        raw = b"" if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        args = {k: [str(v)] for k, v in (query or {}).items()}
        req = ApiRequest(method, path, args, {}, raw, "127.0.0.1")
        req.requester = Requester(user, "DEV")
        try:
            return result_of(route.handler(req, **params))
        except MatrixError as exc:
            return exc.http_status, exc.to_json()

    # --- rooms and sync ---------------------------------------------------------------------
    def room(self, user=ALICE, members=(), **body):
        self.reactor.advance(0.01)
        room_id = result_of(self.rooms.create_room(user, body))
        for member in members:
            self.member(user, room_id, member, "invite")
            self.member(member, room_id, member, "join")
        return room_id

    def member(self, sender, room_id, target, membership):
        out = result_of(self.rooms.update_membership(sender, room_id, target, membership))
        self.flush()
        return out

    def send(self, user, room_id, body="hi", event_type="m.room.message", **content):
        if event_type == "m.room.message":
            content = {"msgtype": "m.text", "body": body, **content}
        event_id = result_of(self.rooms.send_event(user, room_id, event_type, content))
        self.flush()
        return event_id

    def flush(self):
        """Write the evaluated notifications now (the node does it within 0.1 s)."""
        if self.push.evaluator is not None:
            self.push.evaluator.flush()

    def do_sync(self, user, since=None, flt=None):
        f = parse_filter(flt) if isinstance(flt, dict) else DEFAULT_FILTER
        params = SyncParams(
            requester=Requester(user, "DEV"),
            filter=f,
            since=parse_sync_token(since) if since else None,
        )
        return result_of(self.sync.handler.sync(params))

    def receipt(self, user, room_id, event_id, thread_id=None, receipt_type="m.read"):
        result_of(self.sync.send_receipt(user, room_id, receipt_type, event_id, thread_id))


def counts(sync_out, room_id):
    return sync_out["rooms"]["join"][room_id]["unread_notifications"]


def account_data_types(sync_out):
    return [e["type"] for e in sync_out["account_data"]["events"]]


def push_rules_event(sync_out):
    return next(e for e in sync_out["account_data"]["events"] if e["type"] == "m.push_rules")
