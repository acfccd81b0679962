"""Helpers for the outbound federation unit tests (queue/sender, membership handshakes).

Builds real ``RoomService``s on in-memory SQLite (``rooms_support.InlineDB``: every
``db.run`` completes synchronously), a ``task.Clock`` for time and timers, and a fake
federation client that records what would go over the wire (or routes it to another
in-process node).
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_NODE_TESTS = os.path.dirname(_HERE)
if _NODE_TESTS not in sys.path:
    sys.path.insert(0, _NODE_TESTS)

from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import defer, task

import schema.federation_membership
import schema.federation_outbound  # registers the tables
import schema.sync  # noqa: F401 - registers the tables
from federation.events.builder import build_event
from federation.keys import SigningKey
from federation.transport.errors import DestinationUnreachable
from node.clock import ReactorClock
from node.rooms.event_meta import meta
from node.rooms.service import RoomService
from rooms_support import FakeAccounts, RecordingNotifier

START_S = 1_700_000_000


class StepReactorClock(ReactorClock):
    """The reactor's time, but every read is at least 1 ms after the previous one
    (distinct timestamps, so identical requests still make distinct events)."""

    def __init__(self, reactor) -> None:
        super().__init__(reactor)
        self._last = 0

    def time_ms(self) -> int:
        self._last = max(super().time_ms(), self._last + 1)
        return self._last


def make_clock() -> tuple[task.Clock, ReactorClock]:
    reactor = task.Clock()
    reactor.advance(START_S)
    return reactor, StepReactorClock(reactor)


def make_rooms(server: str, db: InlineDB, clock, key: SigningKey, accounts=None) -> RoomService:
    svc = RoomService(
        db=db,
        clock=clock,
        server_name=server,
        signing_key=key,
        accounts=accounts,
        notifier=RecordingNotifier(),
    )
    svc.persister.start_sync()
    return svc


class FakeClient:
    """``FederationHttpClient.request`` stand-in: records requests; destinations in
    ``down`` are unreachable; ``responder(dest, method, path, body, query)`` may answer."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.requests: list[tuple[str, str, str, dict | None, dict | None]] = []
        self.responder = None
        self.status = 200

    async def request(self, destination, method, path, json_body=None, query=None, timeout=None):
        self.requests.append((destination, method, path, json_body, query))
        if destination in self.down:
            raise DestinationUnreachable(destination, "connection refused")
        if self.responder is not None:
            return await self.responder(destination, method, path, json_body, query)
        return self.status, {"pdus": {}}

    async def request_ok(self, destination, method, path, json_body=None, query=None, timeout=None):
        from federation.transport.errors import RemoteError

        status, body = await self.request(destination, method, path, json_body, query, timeout)
        if not 200 <= status < 300:
            raise RemoteError(destination, status, body)
        return body

    def transactions(self, destination: str) -> list[tuple[str, dict]]:
        """(txn_id, body) of every /send request that reached ``destination``'s network."""
        out = []
        for dest, method, path, body, _ in self.requests:
            if (
                dest == destination
                and method == "PUT"
                and "/send/" in path
                and destination not in ()
            ):
                out.append((path.rsplit("/", 1)[1], body))
        return out


class Policy:
    def __init__(self, refused=()) -> None:
        self.refused = set(refused)

    def allow_outbound(self, destination: str) -> bool:
        return destination not in self.refused

    def allow_inbound(self, origin: str) -> bool:
        return origin not in self.refused

    def pinned_keys(self, server_name: str):
        return None


def remote_join(svc: RoomService, room_id: str, user_id: str, key: SigningKey):
    """Put a remote user's join (signed by their server) into a local room, as the
    inbound pipeline would."""
    server = user_id.partition(":")[2]

    async def go():
        room = await svc.get_room(room_id)
        async with room.lock:
            from federation.auth.rules import check_auth
            from federation.auth.selection import auth_types_for_event

            content = {"membership": "join"}
            keys = auth_types_for_event(
                room.room_version, "m.room.member", user_id, user_id, content
            )
            auth = [room.state[k].event_id for k in keys if k in room.state]
            ev = build_event(
                room.room_version,
                server_name=server,
                signing_key=key,
                type="m.room.member",
                sender=user_id,
                content=content,
                room_id=room_id,
                prev_events=list(room.extremities),
                auth_events=auth,
                depth=room.depth + 1,
                origin_server_ts=svc.clock.time_ms(),
                state_key=user_id,
            )
            check_auth(ev, room.state)
            d = svc.commit_local(room, ev)
        await d
        return ev

    return result_of(go())


def fired(d):
    """The result of an already fired Deferred (or None when not fired)."""
    out = []
    if isinstance(d, defer.Deferred):
        d.addBoth(lambda r: (out.append(r), r)[1])
    return out[0] if out else None


# --- two in-process servers -------------------------------------------------------------


class FakeKeyring:
    """Knows every test server's key (no fetching)."""

    def __init__(self, keys: dict) -> None:
        self.keys = keys  # server -> SigningKey

    async def ensure_event_keys(self, pdus):
        return None

    def event_key_lookup(self, pdu):
        def lookup(server, key_id):
            k = self.keys.get(server)
            return k.verify_key if k is not None and k.key_id == key_id else None

        return lookup


class LinearIngest:
    """A small stand-in for the inbound pipeline (linear rooms only): enough to
    drive the membership handshakes between two in-process servers."""

    def __init__(self, node) -> None:
        self.node = node

    async def receive_pdus(self, origin, pdus):
        from federation.auth.rules import check_auth
        from federation.errors import MatrixError, NotFound
        from federation.events.checks import check_received_event
        from federation.events.model import Event

        rooms = self.node.rooms
        out = {}
        for pdu in pdus:
            try:
                room = await rooms.get_room(pdu["room_id"])
            except NotFound:
                out[pdu.get("event_id", "?")] = {"error": "unknown room"}
                continue
            try:
                ev = check_received_event(
                    pdu, room.room_version, self.node.keyring.event_key_lookup(pdu)
                )
                if await rooms.get_event(ev.event_id) is not None:
                    out[ev.event_id] = {}
                    continue
                auth = dict(await rooms.get_events(ev.auth_event_ids))
                create = room.state[("m.room.create", "")]
                auth[create.event_id] = create
                async with room.lock:
                    check_auth(ev, room.state, auth_events=auth)
                    d = rooms.commit_local(room, ev)
                await d
                out[ev.event_id] = {}
            except MatrixError as exc:
                import logging

                logging.getLogger("test.ingest").warning("refused: %s", exc.message)
                out[Event(dict(pdu), room.room_version).event_id] = {"error": exc.message}
        return out

    async def persist_joined_room(self, room_version, join_event, state, auth_chain, origin):
        from federation.events.model import Event
        from node.rooms.state_cache import RoomState

        rooms = self.node.rooms
        rv = room_version
        evs = {}
        for pdu in list(auth_chain) + list(state):
            ev = Event(dict(pdu), rv)
            evs[ev.event_id] = ev
        join = Event(dict(join_event), rv)
        create = next(e for e in evs.values() if e.type == "m.room.create")
        room = RoomState(join.room_id, rv, creator=create.sender)
        known = await rooms.get_events(list(evs))
        from node.rooms import store

        first = await rooms.db.run(store.load_room, join.room_id) is None
        pending = []
        for ev in sorted(evs.values(), key=lambda e: e.depth):
            if ev.event_id in known:
                continue
            meta(ev).outlier = True
            if first:
                meta(ev).new_room = {
                    "room_id": join.room_id,
                    "room_version": rv.identifier,
                    "creator": create.sender,
                    "is_public": False,
                    "room_type": None,
                    "created_ts": 0,
                }
                first = False
            pending.append(rooms.persister.enqueue(ev))
        for d in pending:
            await d
        for pdu in state:
            room.set_state_event(Event(dict(pdu), rv))
        room.extremities = list(join.prev_event_ids)
        room.depth = join.depth - 1
        if first:
            meta(join).new_room = {
                "room_id": join.room_id,
                "room_version": rv.identifier,
                "creator": create.sender,
                "is_public": False,
                "room_type": None,
                "created_ts": 0,
            }
        rooms.add_room(room)
        async with room.lock:
            d = rooms.commit_local(room, join)
        await d
        return join


class FedNode:
    """One server: rooms, outbound sender and membership service on its own database;
    ``network`` routes federation requests between nodes in-process."""

    def __init__(
        self, server: str, key: SigningKey, network: dict, reactor_clock, users=("alice", "bob")
    ) -> None:
        from node.federation.membership.service import MembershipService
        from node.federation.membership.wiring import room_hooks
        from node.federation.outbound.wiring import attach, build_sender

        self.server = server
        self.key = key
        self.network = network
        network[server] = self
        self.reactor, self.clock = reactor_clock
        self.db = InlineDB()
        accounts = FakeAccounts(())
        accounts.profiles = {f"@{u}:{server}": {"displayname": u.capitalize()} for u in users}
        self.accounts = accounts
        self.rooms = make_rooms(server, self.db, self.clock, key, accounts=accounts)
        self.client = FakeClient()
        self.client.responder = self._route
        self.policy = Policy()
        self.keyring = FakeKeyring({})
        self.sender = build_sender(
            db=self.db,
            clock=self.clock,
            client=self.client,
            server_name=server,
            rooms=self.rooms,
            policy=self.policy,
            random=lambda: 0.5,
        )
        attach(self.sender, rooms=self.rooms)
        if os.environ.get("FEDOUT_LINEAR_INGEST"):
            self.ingest = LinearIngest(self)
        else:  # the real inbound pipeline (node/federation/ingest/)
            from node.federation.ingest import Ingest

            self.ingest = Ingest(
                rooms=self.rooms,
                state_store=self.rooms.state_store,
                keyring=self.keyring,
                client=self.client,
                policy=self.policy,
                server_name=server,
            )
        self.ms = MembershipService(
            rooms=self.rooms,
            accounts=accounts,
            sender=self.sender,
            client=self.client,
            keyring=self.keyring,
            ingest=self.ingest,
            state_store=self.rooms.state_store,
            policy=self.policy,
            db=self.db,
            clock=self.clock,
            server_name=server,
            signing_key=lambda: key,
        )
        from node.federation.remote.backfill import Backfiller

        backfiller = Backfiller(
            rooms=self.rooms,
            client=self.client,
            clock=self.clock,
            server_name=server,
            ingest=self.ingest,
            policy=self.policy,
        )
        self.rooms.attach_federation(room_hooks(self.ms, backfill=backfiller.backfill))
        result_of(self.sender.start())

    def uid(self, name: str) -> str:
        return f"@{name}:{self.server}"

    async def _route(self, dest, method, path, body, query):
        """Deliver a request from this node to ``dest`` (another FedNode)."""
        from urllib.parse import unquote

        from federation.errors import MatrixError

        target = self.network.get(dest)
        if target is None:
            from federation.transport.errors import DestinationUnreachable

            raise DestinationUnreachable(dest, "no such server")
        parts = [unquote(p) for p in path.split("/")]
        ms = target.ms
        origin = self.server
        try:
            if "/make_join/" in path:
                return 200, await ms.on_make_join(
                    origin, parts[-2], parts[-1], (query or {}).get("ver", [])
                )
            if "/send_join/" in path:
                return 200, await ms.on_send_join(origin, parts[-2], parts[-1], body)
            if "/invite/" in path:
                return 200, await ms.on_invite(origin, parts[-2], parts[-1], body)
            if "/make_knock/" in path:
                return 200, await ms.on_make_knock(
                    origin, parts[-2], parts[-1], (query or {}).get("ver", [])
                )
            if "/send_knock/" in path:
                return 200, await ms.on_send_knock(origin, parts[-2], parts[-1], body)
            if "/make_leave/" in path:
                return 200, await ms.on_make_leave(origin, parts[-2], parts[-1])
            if "/send_leave/" in path:
                return 200, await ms.on_send_leave(origin, parts[-2], parts[-1], body)
            if "/backfill/" in path:
                from types import SimpleNamespace

                from node.federation.server.backfill import walk_back

                evs = await walk_back(
                    SimpleNamespace(rooms=target.rooms),
                    parts[-1],
                    list(query["v"]),
                    int(query["limit"]),
                )
                return 200, {"origin": dest, "pdus": [dict(e.pdu) for e in evs]}
            if "/send/" in path:
                res = await target.ingest.receive_pdus(origin, body["pdus"])
                target.received_edus.extend(body.get("edus", []))
                return 200, {"pdus": res}
            if "/query/directory" in path:
                from node.rooms import store

                rid = await target.db.run(store.alias_room_id, query["room_alias"])
                if rid is None:
                    return 404, {"errcode": "M_NOT_FOUND", "error": "no alias"}
                return 200, {"room_id": rid, "servers": [dest]}
        except MatrixError as exc:
            return exc.http_status, exc.to_json()
        return 404, {"errcode": "M_UNRECOGNIZED", "error": path}

    received_edus: list = []


def link(*nodes) -> None:
    """Every node trusts every other node's key."""
    keys = {n.server: n.key for n in nodes}
    for n in nodes:
        n.keyring.keys.update(keys)
        n.received_edus = []
