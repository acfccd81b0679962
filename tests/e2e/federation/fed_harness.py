"""Multi-node federation harness (used by tests/e2e/federation and tests/e2e/interop).

Nodes are the e2e suite's ``RunningNode`` (tests/e2e/conftest.py, imported from there, not
copied) plus a federation listener:

* every node runs ``parta node init`` with its own signing key; the server name is
  ``localhost:<federation port>`` (no DNS, no ``.well-known``) or, with ``named=True``, a name
  like ``school-a.fed.test`` that every other node maps to ``127.0.0.1:<port>`` with
  ``federation.server_overrides``;
* the federation listener serves a certificate signed by the session's ``TestCA``
  (bench/federation_env.py) and every node verifies outbound TLS against that CA file - the
  insecure switch is only used by test_fed_tls.py, which is about it (``self_signed=True``
  keeps the certificate ``parta node init`` generated instead);
* ``FedNode.partition_from(others)`` / ``heal()`` rewrite ``server_overrides`` so that the
  other servers' names point at a dead loopback port, then restart the node (its database and
  queues survive): a network partition without touching the tested code.

``Watcher`` wraps a matrix-nio client: it syncs and accumulates what the client has seen
(timeline per room - gaps of a ``limited`` timeline are filled with ``/messages`` like a real
client -, invites, left rooms, typing and receipts), and ``await watcher.until(pred)`` waits
(bounded) for a condition.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import time
from collections import defaultdict
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import quote

import yaml

_HERE = os.path.dirname(os.path.abspath(__file__))
_E2E = os.path.dirname(_HERE)
REPO = os.path.dirname(os.path.dirname(_E2E))
for _p in (_E2E, os.path.join(REPO, "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def _load_e2e_conftest() -> Any:
    """tests/e2e/conftest.py as a module of its own (pytest imports every conftest under the
    same name ``conftest``, so ``import conftest`` would be ambiguous)."""
    name = "parta_e2e_conftest"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(_E2E, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_conftest()
RunningNode = _e2e.RunningNode
NodeFailed = _e2e.NodeFailed
free_port = _e2e.free_port
parta_command = _e2e.parta_command
init_node = _e2e.init_node
merge_config = _e2e._merge
IN_CI = _e2e.IN_CI

from e2e_helpers import http_request
from federation_env import (  # noqa: F401 - re-exported
    FakeServer,
    TestCA,
    TLSNameConnection,
    parta_federation_section,
    q,
    server_host,
)

FED_STARTUP_TIMEOUT = 60.0
DEFAULT_WAIT = 90.0  # seconds a cross-server condition may take (2 shared cores)


# --- nodes ---------------------------------------------------------------------------------
class FedNode(RunningNode):
    """A ``RunningNode`` with a TLS federation listener."""

    def __init__(
        self, data_dir: str, config_path: str, config: dict, fed_port: int, ca: TestCA, label: str
    ) -> None:
        super().__init__(data_dir, config_path, config)
        self.fed_port = fed_port
        self.ca = ca
        self.label = label
        self.base_overrides: dict[str, str] = dict(
            config.get("federation", {}).get("server_overrides") or {}
        )
        self.init_federation: dict = {}  # the federation section `parta node init` wrote
        self.self_signed = False

    def __repr__(self) -> str:
        return f"<FedNode {self.label} {self.server_name}>"

    # process ----------------------------------------------------------------------------
    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + FED_STARTUP_TIMEOUT
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise NodeFailed(f"{self.label} exited during start-up:\n{self.log_tail()}")
            try:
                status, body = self.fed_get("/_matrix/federation/v1/version")
                if status == 200:
                    return
                last = (status, body)
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        raise NodeFailed(
            f"{self.label}: federation listener on port {self.fed_port} did not "
            f"answer within {FED_STARTUP_TIMEOUT}s (last: {last}):\n"
            f"{self.log_tail()}"
        )

    def restart(self) -> None:
        code = self.stop()
        if code != 0:
            raise NodeFailed(f"{self.label} exited with {code} on SIGTERM:\n{self.log_tail()}")
        self.start()

    def write_config(self) -> None:
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(self.config, fh, sort_keys=False)

    def set_overrides(self, overrides: dict[str, str]) -> None:
        """Rewrite ``federation.server_overrides`` (takes effect on the next start)."""
        self.config.setdefault("federation", {})["server_overrides"] = dict(overrides)
        self.write_config()

    def partition_from(self, others: Iterable["FedNode | str"]) -> None:
        """Restart with every name in ``others`` resolved to a dead loopback port."""
        dead = f"127.0.0.1:{free_port()}"
        overrides = dict(self.base_overrides)
        for other in others:
            overrides[other if isinstance(other, str) else other.server_name] = dead
        self.stop_checked()
        self.set_overrides(overrides)
        self.start()

    def heal(self) -> None:
        """Restart with the original overrides."""
        self.stop_checked()
        self.set_overrides(self.base_overrides)
        self.start()

    def stop_checked(self) -> None:
        code = self.stop()
        if code != 0:
            raise NodeFailed(f"{self.label} exited with {code} on SIGTERM:\n{self.log_tail()}")

    # raw federation requests (unsigned, for readiness; signed ones go through FakeServer) --
    def fed_get(self, path: str) -> tuple[int, Any]:
        """An unsigned GET on the federation listener (key and version endpoints)."""
        import ssl

        # Readiness only: a node keeping its self-signed init certificate is reached without
        # verification here (the tested code never is).
        ctx = (
            ssl._create_unverified_context()
            if self.self_signed  # noqa: S323 - see above
            else self.ca.client_context()
        )
        conn = TLSNameConnection(server_host(self.server_name), self.fed_port, ctx, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw

    # helpers ----------------------------------------------------------------------------
    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"


class FedCluster:
    """Creates, starts and finally stops federating nodes for one test module."""

    def __init__(self, tmp_root: str, ca: TestCA, pg: Any = None) -> None:
        self.tmp_root = tmp_root
        self.ca = ca
        self.pg = pg
        self.nodes: list[FedNode] = []
        self._n = 0

    def create(
        self,
        count: int,
        *,
        named: bool = False,
        backends: Iterable[str] | None = None,
        self_signed: bool = False,
        **overrides: Any,
    ) -> list[FedNode]:
        """``count`` nodes, initialised, configured to federate with each other, started.

        ``self_signed``: keep the self-signed certificate ``parta node init`` made instead of
        one from the test CA (other nodes then cannot verify it)."""
        backends = list(backends or ["sqlite"] * count)
        specs = []
        for i in range(count):
            self._n += 1
            label = "abcdefghij"[len(self.nodes) + i] if len(self.nodes) + i < 10 else str(i)
            fed_port = free_port()
            name = f"school-{label}{self._n}.fed.test" if named else f"localhost:{fed_port}"
            specs.append((label, fed_port, name))
        peer_overrides = {name: f"127.0.0.1:{port}" for _l, port, name in specs} if named else {}
        made = []
        for (label, fed_port, name), backend in zip(specs, backends, strict=False):
            node = self._init_node(
                label,
                fed_port,
                name,
                backend,
                {k: v for k, v in peer_overrides.items() if k != name},
                overrides,
                self_signed,
            )
            made.append(node)
        for node in made:
            self.nodes.append(node)
            node.start()
        return made

    def _init_node(
        self,
        label: str,
        fed_port: int,
        server_name: str,
        backend: str,
        peer_overrides: dict[str, str],
        overrides: dict,
        self_signed: bool = False,
    ) -> FedNode:
        data_dir = os.path.join(self.tmp_root, f"node-{label}-{fed_port}")
        config_path, config = init_node(server_name, data_dir)
        init_federation = json.loads(json.dumps(config.get("federation") or {}))
        if self_signed:
            listener = init_federation.get("listener") or {}
            cert, key = (
                os.path.join(data_dir, listener["tls_certificate_path"]),
                os.path.join(data_dir, listener["tls_private_key_path"]),
            )
        else:
            cert, key = self.ca.issue(
                server_name,
                os.path.join(data_dir, "fed-ca-signed.crt"),
                os.path.join(data_dir, "fed-ca-signed.key"),
            )
        config["server_name"] = server_name
        config["client_listener"] = {
            **config.get("client_listener", {}),
            "bind_address": "127.0.0.1",
            "port": free_port(),
        }
        config["metrics_listener"] = {
            **config.get("metrics_listener", {}),
            "bind_address": "127.0.0.1",
            "port": free_port(),
        }
        config["rate_limits"] = {**config.get("rate_limits", {}), "enabled": False}
        if backend == "postgres":
            if self.pg is None:
                raise RuntimeError("a postgres node needs the pg_server fixture")
            config["database_url"] = self.pg.new_database()
        fed = merge_config(
            dict(config.get("federation") or {}),
            parta_federation_section(
                port=fed_port,
                cert_path=cert,
                key_path=key,
                ca_file=self.ca.cert_path,
                overrides=peer_overrides,
            ),
        )
        config["federation"] = fed
        merge_config(config, overrides)
        with open(config_path, "w") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        node = FedNode(data_dir, config_path, config, fed_port, self.ca, label)
        node.init_federation = init_federation
        node.self_signed = self_signed
        return node

    def stop_all(self) -> list[str]:
        failures = []
        for node in self.nodes:
            try:
                code = node.stop()
            except NodeFailed as exc:
                failures.append(str(exc))
                continue
            if code != 0:
                failures.append(
                    f"node {node.label} ({node.server_name}) exited with {code} "
                    f"on SIGTERM:\n{node.log_tail()}"
                )
        return failures


# --- clients -------------------------------------------------------------------------------
class Watcher:
    """Accumulates what a matrix-nio client sees over successive syncs."""

    def __init__(self, client: Any, *, fill_gaps: bool = True) -> None:
        self.client = client
        self.fill_gaps = fill_gaps
        self.timeline: dict[str, list[dict]] = defaultdict(list)  # raw client events
        self.seen_ids: dict[str, set[str]] = defaultdict(set)
        self.invites: dict[str, list[dict]] = {}
        self.left: dict[str, list[dict]] = {}
        self.typing: dict[str, list[list[str]]] = defaultdict(list)  # successive user lists
        self.receipts: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        self.syncs = 0

    @property
    def user_id(self) -> str:
        return self.client.user_id

    async def sync_once(self, timeout_ms: int = 1500) -> Any:
        from nio import ReceiptEvent, SyncResponse, TypingNoticeEvent

        resp = await self.client.sync(timeout=timeout_ms)
        assert isinstance(resp, SyncResponse), f"sync of {self.user_id} failed: {resp}"
        self.syncs += 1
        for room_id, info in resp.rooms.join.items():
            self.left.pop(room_id, None)
            self.invites.pop(room_id, None)
            events = [e.source for e in info.timeline.events]
            if info.timeline.limited and self.fill_gaps and self.seen_ids[room_id]:
                events = await self._fill_gap(room_id, info.timeline.prev_batch) + events
            self._add(room_id, events)
            for eph in info.ephemeral:
                if isinstance(eph, TypingNoticeEvent):
                    self.typing[room_id].append(list(eph.users))
                elif isinstance(eph, ReceiptEvent):
                    for r in eph.receipts:
                        self.receipts[room_id].append((r.user_id, r.receipt_type, r.event_id))
        for room_id, info in resp.rooms.invite.items():
            self.invites[room_id] = [getattr(e, "source", None) or {} for e in info.invite_state]
        for room_id, info in resp.rooms.leave.items():
            events = [e.source for e in info.timeline.events]
            self._add(room_id, events)
            self.left[room_id] = events
            self.invites.pop(room_id, None)
        return resp

    def _add(self, room_id: str, events: list[dict]) -> None:
        for ev in events:
            eid = ev.get("event_id")
            if eid and eid in self.seen_ids[room_id]:
                # A duplicate delivery is recorded too: tests check "exactly once".
                self.timeline[room_id].append(ev)
                continue
            if eid:
                self.seen_ids[room_id].add(eid)
            self.timeline[room_id].append(ev)

    async def _fill_gap(self, room_id: str, prev_batch: str | None) -> list[dict]:
        """Events between what we saw and a limited timeline, oldest first (``/messages``)."""
        from nio import MessageDirection, RoomMessagesResponse

        found: list[dict] = []
        token = prev_batch
        for _ in range(100):
            if not token:
                break
            resp = await self.client.room_messages(
                room_id, start=token, direction=MessageDirection.back, limit=50
            )
            assert isinstance(resp, RoomMessagesResponse), f"/messages failed: {resp}"
            reached = False
            for ev in resp.chunk:  # newest first
                src = ev.source
                if src.get("event_id") in self.seen_ids[room_id]:
                    reached = True
                    break
                found.append(src)
            if reached or not resp.chunk or resp.end in (None, token):
                break
            token = resp.end
        found.reverse()
        return found

    async def until(
        self,
        predicate: Callable[["Watcher"], Any],
        *,
        timeout: float = DEFAULT_WAIT,
        what: str = "condition",
    ) -> Any:
        """Sync until ``predicate(self)`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        value = predicate(self)
        while not value:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.user_id}: {what} not met within {timeout:.0f}s ({self.syncs} syncs)"
                )
            await self.sync_once()
            value = predicate(self)
        return value

    # views ------------------------------------------------------------------------------
    def events(self, room_id: str, type: str | None = None) -> list[dict]:
        return [e for e in self.timeline.get(room_id, []) if type is None or e.get("type") == type]

    def messages(self, room_id: str) -> list[dict]:
        return self.events(room_id, "m.room.message")

    def bodies(self, room_id: str) -> list[str]:
        return [e.get("content", {}).get("body") for e in self.messages(room_id)]

    def event(self, room_id: str, event_id: str) -> dict | None:
        return next(
            (e for e in self.timeline.get(room_id, []) if e.get("event_id") == event_id), None
        )

    def membership_of(self, room_id: str, user_id: str) -> str | None:
        """The latest membership of ``user_id`` seen in the timeline."""
        out = None
        for e in self.events(room_id, "m.room.member"):
            if e.get("state_key") == user_id:
                out = e.get("content", {}).get("membership")
        return out


def account_api(account: "Account", method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A client-API request with an ``Account``'s token: (status, parsed JSON or raw bytes).
    Blocking, usable from threads (the crash test's senders)."""
    from e2e_helpers import api

    return api(account.node, method, path, token=account.access_token, json_body=body)


def client_api(
    client: Any, method: str, path: str, body: Any = None, query: dict | None = None
) -> tuple[int, Any]:
    """A raw client-API request with the nio client's token (for what nio cannot say, e.g.
    ``server_name``/``via`` on joins).  Blocking; call through ``asyncio.to_thread``."""
    from urllib.parse import urlencode

    url = client.homeserver + path
    if query:
        url += "?" + urlencode(query, doseq=True)
    headers = {"Authorization": f"Bearer {client.access_token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    status, hdrs, raw = http_request(method, url, body=data, headers=headers)
    if hdrs.get("content-type", "").startswith("application/json"):
        return status, json.loads(raw)
    return status, raw


async def join_via(client: Any, room_id_or_alias: str, servers: Iterable[str]) -> str:
    """``POST /join/{roomIdOrAlias}?server_name=..&via=..``; returns the room ID."""
    servers = list(servers)
    status, body = await asyncio.to_thread(
        client_api,
        client,
        "POST",
        f"/_matrix/client/v3/join/{quote(room_id_or_alias, safe='')}",
        {},
        {"server_name": servers, "via": servers},
    )
    assert status == 200, f"join {room_id_or_alias} via {servers}: {status} {body}"
    return body["room_id"]


async def room_state(client: Any, room_id: str) -> dict[tuple[str, str], dict]:
    """The room's current state as the client sees it: {(type, state_key): event}."""
    status, body = await asyncio.to_thread(
        client_api, client, "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state"
    )
    assert status == 200, f"state of {room_id} for {client.user_id}: {status} {body}"
    return {(e["type"], e["state_key"]): e for e in body}


async def joined_members(client: Any, room_id: str) -> set[str]:
    status, body = await asyncio.to_thread(
        client_api,
        client,
        "GET",
        f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members",
    )
    assert status == 200, f"joined_members of {room_id}: {status} {body}"
    return set(body.get("joined", {}))


async def wait_for(
    check: Callable[[], Any],
    *,
    timeout: float = DEFAULT_WAIT,
    what: str = "condition",
    interval: float = 0.5,
) -> Any:
    """Poll an async or sync ``check()`` until truthy (bounded)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            last = value
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f}s (last: {last})")
        await asyncio.sleep(interval)


def text(body: str) -> dict:
    return {"msgtype": "m.text", "body": body}


# --- scenario helpers ----------------------------------------------------------------------
async def new_watcher(node: RunningNode, prefix: str = "user") -> Watcher:
    """A fresh user on ``node`` with a matrix-nio client wrapped in a ``Watcher`` (initial
    sync done)."""
    client = await node.new_client(prefix)
    watcher = Watcher(client)
    await watcher.sync_once(timeout_ms=0)
    return watcher


async def close_all(*watchers: Watcher) -> None:
    for w in watchers:
        await w.client.close()


async def send_text(watcher: Watcher, room_id: str, body: str) -> str:
    from nio import RoomSendResponse

    resp = await watcher.client.room_send(room_id, "m.room.message", text(body))
    assert isinstance(resp, RoomSendResponse), f"{watcher.user_id} send to {room_id}: {resp}"
    return resp.event_id


async def accept_invite(guest: Watcher, room_id: str) -> None:
    from nio import JoinResponse

    await guest.until(
        lambda w: room_id in w.invites or room_id in w.timeline, what=f"invite to {room_id}"
    )
    resp = await guest.client.join(room_id)
    assert isinstance(resp, JoinResponse), f"{guest.user_id} join {room_id}: {resp}"


async def setup_room(owner: Watcher, *guests: Watcher, **create_kwargs: Any) -> str:
    """``owner`` creates a room, invites each guest (on any server), each accepts; returns
    once every member's server reports every member joined."""
    from nio import RoomCreateResponse, RoomInviteResponse

    resp = await owner.client.room_create(**create_kwargs)
    assert isinstance(resp, RoomCreateResponse), resp
    room_id = resp.room_id
    for guest in guests:
        inv = await owner.client.room_invite(room_id, guest.user_id)
        assert isinstance(inv, RoomInviteResponse), f"invite {guest.user_id}: {inv}"
        await accept_invite(guest, room_id)
    everyone = {owner.user_id, *(g.user_id for g in guests)}
    for member in (owner, *guests):
        await wait_for(
            lambda m=member: members_are(m, room_id, everyone),
            what=f"{member.user_id} sees members {sorted(everyone)}",
        )
    return room_id


async def equals(coro: Awaitable[Any], expected: Any) -> bool:
    """For ``wait_for``: does ``coro`` come to ``expected``?"""
    return await coro == expected


async def members_are(member: Watcher, room_id: str, expected: set[str]) -> bool:
    """For ``wait_for``: are exactly ``expected`` joined, as ``member`` sees the room?"""
    return await joined_members(member.client, room_id) == expected


async def wait_for_bodies(
    watcher: Watcher, room_id: str, bodies: Iterable[str], *, timeout: float = DEFAULT_WAIT
) -> list[dict]:
    """Sync until every body in ``bodies`` is in the room's timeline; returns those events."""
    wanted = list(bodies)

    def got(w: Watcher) -> bool:
        have = set(w.bodies(room_id))
        return all(b in have for b in wanted)

    await watcher.until(
        got, timeout=timeout, what=f"{len(wanted)} messages in {room_id} (e.g. {wanted[:2]})"
    )
    return [e for e in watcher.messages(room_id) if e["content"].get("body") in set(wanted)]


class Account:
    """A registered user (token kept) whose client can be recreated in every scenario
    (matrix-nio clients are bound to one event loop, module fixtures outlive them)."""

    def __init__(self, node: RunningNode, prefix: str) -> None:
        localpart = f"{prefix}{next(node._users)}"
        reg = node.register(localpart)
        self.node = node
        self.user_id: str = reg["user_id"]
        self.device_id: str = reg["device_id"]
        self.access_token: str = reg["access_token"]

    async def watcher(self, *, initial_sync: bool = True) -> Watcher:
        from nio import AsyncClient

        client = AsyncClient(self.node.base_url, self.user_id)
        client.restore_login(self.user_id, self.device_id, self.access_token)
        w = Watcher(client)
        if initial_sync:
            await w.sync_once(timeout_ms=0)
        return w
