"""In-process federating nodes for the inbound federation unit tests (not a test module).

``FedNode`` is a real ``RoomService`` + ``SyncService`` + federation area (``wiring.wire``)
on in-memory SQLite whose ``db.run`` completes synchronously, with a ``task.Clock``.  Its
outbound client is ``InProcessClient``: each request is signed with X-Matrix exactly as
the real client signs it and handed to the destination node's federation router, through
the same ``FederationRoutes`` authentication as over HTTPS -- so the key fetches, request
authentication, ``/send``, ``get_missing_events`` and the read endpoints all run for real,
just without sockets.  A ``Network`` can cut links (``down``) to make forks.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_NODE_TESTS = os.path.dirname(_HERE)
if _NODE_TESTS not in sys.path:
    sys.path.insert(0, _NODE_TESTS)

import orjson
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import task
from twisted.web.http_headers import Headers

import schema.federation  # registers the tables
import schema.media
import schema.sync  # noqa: F401 - registers the tables
from federation.auth.selection import auth_types_for_event
from federation.errors import MatrixError
from federation.events.builder import build_event
from federation.keys import SigningKey
from federation.transport.client import build_target
from federation.transport.errors import DestinationUnreachable, RemoteError
from federation.transport.xmatrix import sign_request
from node.clock import ReactorClock
from node.config import Config, FederationConfig
from node.federation import wiring
from node.http.file_sender import FileResponse
from node.http.request import ApiRequest
from node.http.server import Response
from node.rooms.service import RoomService
from node.sync.notifier import SyncNotifier
from node.sync.service import SyncService
from rooms_support import FakeAccounts

START_S = 1_700_000_000


class StepClock(ReactorClock):
    """Reactor time, strictly increasing per read (distinct timestamps)."""

    def __init__(self, reactor: Any) -> None:
        super().__init__(reactor)
        self._last = 0

    def time_ms(self) -> int:
        self._last = max(super().time_ms(), self._last + 1)
        return self._last


class _Raw:
    """The bits of a twisted.web request the authenticator reads."""

    def __init__(self, uri: str, headers: dict[str, list[str]]) -> None:
        self.uri = uri.encode("ascii")
        self.requestHeaders = Headers(
            {k.encode(): [v.encode() for v in vs] for k, vs in headers.items()}
        )


class Network:
    def __init__(self) -> None:
        self.nodes: dict[str, "FedNode"] = {}
        self.down: set[frozenset[str]] = set()
        self.log: list[tuple[str, str, str, str]] = []  # (origin, dest, method, path)

    def cut(self, a: str, b: str) -> None:
        self.down.add(frozenset((a, b)))

    def heal(self) -> None:
        self.down.clear()


def dispatch(
    node: "FedNode", method: str, target: str, body: bytes, headers: dict[str, list[str]]
) -> tuple[int, Any]:
    """Run a request through ``node``'s federation router (as ApiResource would)."""
    path, _, query = target.partition("?")
    from urllib.parse import parse_qs

    args = {k: v for k, v in parse_qs(query, keep_blank_values=True).items()}
    route, params, known = node.fed.fctx.router.match(method, path)
    if route is None:
        return (405 if known else 404), {"errcode": "M_UNRECOGNIZED"}
    req = ApiRequest(
        method,
        path,
        args,
        {k: v[-1] for k, v in headers.items()},
        body,
        "127.0.0.1",
        raw=_Raw(target, headers),
    )
    try:
        result = result_of(route.handler(req, **params))
    except MatrixError as exc:
        return exc.http_status, exc.to_json()
    if isinstance(result, tuple):
        return result
    if isinstance(result, FileResponse):  # ApiResource streams it; here: read it whole
        with result.file:
            data = result.prefix + result.file.read(result.length) + result.suffix
        result = Response(result.status, data, result.content_type, result.headers)
    return result.status, result  # a node.http.server.Response


class InProcessClient:
    """``FederationHttpClient``'s interface, delivering to nodes of a ``Network``."""

    def __init__(self, network: Network, server_name: str, key: SigningKey) -> None:
        self.network = network
        self.server_name = server_name
        self.key = key

    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Any = None,
        timeout: Any = None,
    ) -> tuple[int, Any]:
        node = self.network.nodes.get(destination)
        if node is None or frozenset((self.server_name, destination)) in self.network.down:
            raise DestinationUnreachable(destination, "no route (test network)")
        target = build_target(path, query)
        self.network.log.append((self.server_name, destination, method, path))
        auth = sign_request(method, target, self.server_name, destination, self.key, json_body)
        body = orjson.dumps(json_body) if json_body is not None else b""
        status, out = dispatch(node, method, target, body, {"authorization": [auth]})
        return status, out

    async def request_ok(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Any = None,
        timeout: Any = None,
    ) -> Any:
        status, body = await self.request(destination, method, path, json_body, query, timeout)
        if not 200 <= status < 300:
            raise RemoteError(destination, status, body)
        return body

    async def get_raw(
        self,
        destination: str,
        path: str,
        query: Any = None,
        timeout: Any = None,
        max_bytes: Any = None,
    ) -> Any:
        status, out = await self.request(destination, "GET", path, None, query, timeout)
        return out

    async def close(self) -> None:
        pass


class FedNode:
    def __init__(
        self,
        network: Network,
        server_name: str,
        *,
        users=("alice", "bob"),
        key_version: str | None = None,
        policy: Any = None,
        max_missing_events: int = 20,
        media_dir: str | None = None,
    ) -> None:
        self.network = network
        self.server_name = server_name
        self.reactor = task.Clock()
        self.reactor.advance(START_S)
        self.clock = StepClock(self.reactor)
        self.key = SigningKey.generate(key_version)
        self.db = InlineDB()
        self.accounts = FakeAccounts(())
        self.accounts.profiles = {f"@{u}:{server_name}": {"displayname": u} for u in users}
        self.notifier = SyncNotifier(self.clock)
        self.rooms = RoomService(
            db=self.db,
            clock=self.clock,
            server_name=server_name,
            signing_key=self.key,
            accounts=self.accounts,
            notifier=self.notifier,
        )
        self.rooms.persister.start_sync()
        self.rooms.state_store.start_sync()
        self.sync = SyncService(
            db=self.db,
            clock=self.clock,
            server_name=server_name,
            accounts=self.accounts,
            rooms=self.rooms,
            notifier=self.notifier,
        )
        config = Config(
            server_name=server_name,
            data_dir="/nonexistent",
            federation=FederationConfig(enabled=False, max_missing_events=max_missing_events),
        )
        self.ctx = SimpleNamespace(
            config=config,
            reactor=self.reactor,
            clock=self.clock,
            db=self.db,
            signing_key=self.key,
            server_name=server_name,
            router=None,
        )
        self.client = InProcessClient(network, server_name, self.key)
        self.media = None
        if media_dir is not None:
            from twisted.internet import defer

            from node.media.service import MediaService
            from node.media.store import MediaStore

            self.media = MediaService(
                server_name=server_name,
                config=config.media,
                db=self.db,
                store=MediaStore(media_dir),
                clock=self.clock,
                offload=lambda fn, *a: defer.succeed(fn(*a)),
            )
        self.fed = wiring.wire(
            self.ctx,
            accounts=self.accounts,
            rooms=self.rooms,
            notifier=self.notifier,
            sync=self.sync,
            policy=policy,
            media=self.media,
            signing_keys=[self.key],
            old_keys=[],
            client=self.client,
        )
        network.nodes[server_name] = self

    # --- helpers ---------------------------------------------------------------------------
    def uid(self, name: str) -> str:
        return f"@{name}:{self.server_name}"

    def room(self, room_id: str):
        return result_of(self.rooms.get_room(room_id))

    def event(self, event_id: str):
        return result_of(self.rooms.get_event(event_id))

    def pdu(self, event_id: str) -> dict:
        return dict(self.event(event_id).pdu)

    def build(
        self,
        room_id: str,
        sender: str,
        etype: str,
        content: dict,
        *,
        state_key: str | None = None,
        prev: list[str] | None = None,
        state: dict | None = None,
        depth: int | None = None,
        key: SigningKey | None = None,
        server_name: str | None = None,
        ts: int | None = None,
    ):
        """Sign an event as this server (or ``server_name``/``key``) on top of another
        node's view of the room (``state``: (type, sk) -> Event, default: ours)."""
        room = self.room(room_id)
        state = room.state if state is None else state
        keys = auth_types_for_event(room.room_version, etype, sender, state_key, content)
        auth = [state[k].event_id for k in keys if k in state]
        return build_event(
            room.room_version,
            server_name=server_name or self.server_name,
            signing_key=key or self.key,
            type=etype,
            sender=sender,
            content=content,
            room_id=room_id,
            prev_events=list(prev if prev is not None else room.extremities),
            auth_events=auth,
            depth=depth if depth is not None else room.depth + 1,
            origin_server_ts=ts if ts is not None else self.clock.time_ms(),
            state_key=state_key,
        )

    def send_txn(
        self,
        origin: "FedNode",
        pdus: list[dict],
        edus: list[dict] | None = None,
        txn_id: str = "t1",
    ) -> tuple[int, Any]:
        """``origin`` sends a signed ``/send`` transaction to this node."""
        body = {
            "origin": origin.server_name,
            "origin_server_ts": origin.clock.time_ms(),
            "pdus": pdus,
        }
        if edus:
            body["edus"] = edus
        return result_of(
            origin.client.request(
                self.server_name, "PUT", f"/_matrix/federation/v1/send/{txn_id}", body
            )
        )

    def visible_ids(self, room_id: str) -> list[str]:
        evs = result_of(self.rooms.get_events_in_range(room_id, None, None, 1000, "f"))
        return [e.event_id for e in evs]

    def state_ids(self, room_id: str) -> dict:
        return {k: e.event_id for k, e in self.room(room_id).state.items()}


def two_nodes_in_a_room() -> tuple[Network, FedNode, FedNode, str]:
    """a.test with alice's public room that b.test's bob has joined (``join_remote``):
    (network, a, b, room ID)."""
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    room_id = result_of(a.rooms.create_room(a.uid("alice"), {"preset": "public_chat"}))
    join_remote(a, b, room_id)
    return net, a, b, room_id


def join_remote(resident: FedNode, joiner: FedNode, room_id: str, user: str = "bob") -> str:
    """``joiner``'s user joins ``resident``'s room without make_join/send_join: the join
    event is built on the resident's state and sent in a transaction, then the joiner
    stores the room from the resident's state before the join (as the membership send_join
    flow will)."""
    resident_room = resident.room(room_id)
    user_id = joiner.uid(user)
    join = resident.build(
        room_id,
        user_id,
        "m.room.member",
        {"membership": "join"},
        state_key=user_id,
        key=joiner.key,
        server_name=joiner.server_name,
    )
    status, body = resident.send_txn(joiner, [join.pdu], txn_id=f"join-{user}")
    assert status == 200 and body["pdus"] == {join.event_id: {}}, body
    state_ids = result_of(resident.rooms.state_store.get_state_ids_before(join.event_id))
    state = [resident.pdu(eid) for eid in state_ids.values()]
    from federation.state_res import auth_chain

    chain_ids = auth_chain(list(state_ids.values()) + [join.event_id], resident.event)
    chain = [resident.pdu(eid) for eid in chain_ids]
    result_of(
        joiner.fed.ingest.persist_joined_room(
            resident_room.room_version, join.pdu, state, chain, resident.server_name
        )
    )
    assert resident_room.membership(user_id) == "join"
    return join.event_id


def forward(src: FedNode, dst: FedNode, event_ids: list[str], txn_id: str) -> dict:
    """Send ``src``'s events to ``dst`` in one transaction; the per-PDU results."""
    status, body = dst.send_txn(src, [src.pdu(e) for e in event_ids], txn_id=txn_id)
    assert status == 200, body
    return body["pdus"]
