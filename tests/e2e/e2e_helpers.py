"""Helpers for the e2e tests (imported by tests/e2e/conftest.py and the test modules)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")

DEFAULT_PASSWORD = "correct horse battery staple"
SCENARIO_TIMEOUT = 120.0


def run(coro: Awaitable[T], timeout: float = SCENARIO_TIMEOUT) -> T:
    """Run one async matrix-nio scenario to completion from a sync test (bounded in time)."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


_ISSUED_PORTS: set[int] = set()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago and was never handed out before in
    this test process (the kernel may return the same port to consecutive bind(0) calls,
    and a node given the same port for two listeners fails to start)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ISSUED_PORTS:
            _ISSUED_PORTS.add(port)
            return port


def parta_command() -> list[str]:
    """The installed ``parta`` entry point next to this interpreter, else the module itself."""
    script = os.path.join(os.path.dirname(sys.executable), "parta")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "import sys; from node.cli.main import main; sys.exit(main())"]


def http_request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP request to a loopback node: (status, lower-cased headers, body)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def api(
    node: Any,
    method: str,
    path: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    raw_body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A client-API call with a JSON answer: (status, parsed body or raw bytes)."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    body = raw_body
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    status, resp_headers, data = http_request(method, node.base_url + path, body=body, headers=hdrs)
    if resp_headers.get("content-type", "").startswith("application/json"):
        return status, json.loads(data)
    return status, data


async def sync_until(
    client: Any, predicate: Callable[[Any], bool], *, timeout_ms: int = 3000, attempts: int = 10
) -> Any:
    """Incremental /sync until ``predicate(sync_response)`` holds (bounded by ``attempts``)."""
    from nio import SyncResponse

    last = None
    for _ in range(attempts):
        resp = await client.sync(timeout=timeout_ms)
        assert isinstance(resp, SyncResponse), f"sync failed: {resp}"
        last = resp
        if predicate(resp):
            return resp
    raise AssertionError(f"condition not met after {attempts} syncs; last: {last}")


def timeline_events(resp: Any, room_id: str) -> list[Any]:
    room = resp.rooms.join.get(room_id)
    return list(room.timeline.events) if room is not None else []


async def create_room_with(owner: Any, *guests: Any, **kwargs: Any) -> str:
    """``owner`` creates a room, invites ``guests``, each joins; returns the room ID."""
    from nio import JoinResponse, RoomCreateResponse, RoomInviteResponse

    resp = await owner.room_create(**kwargs)
    assert isinstance(resp, RoomCreateResponse), resp
    for guest in guests:
        inv = await owner.room_invite(resp.room_id, guest.user_id)
        assert isinstance(inv, RoomInviteResponse), inv
        joined = await guest.join(resp.room_id)
        assert isinstance(joined, JoinResponse), joined
    return resp.room_id


async def joined_ids(client: Any, room_id: str) -> set[str]:
    from nio import JoinedMembersResponse

    resp = await client.joined_members(room_id)
    assert isinstance(resp, JoinedMembersResponse), resp
    return {m.user_id for m in resp.members}


def text(body: str) -> dict:
    return {"msgtype": "m.text", "body": body}
