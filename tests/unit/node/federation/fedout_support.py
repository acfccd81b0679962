"""Helpers for FED-OUT's unit tests (outbound queue/sender, membership handshakes).

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

from twisted.internet import defer, task  # noqa: E402

import schema.federation_outbound  # noqa: E402,F401 - registers the tables
import schema.federation_membership  # noqa: E402,F401
import schema.sync  # noqa: E402,F401
from federation.events.builder import build_event  # noqa: E402
from federation.keys import SigningKey  # noqa: E402
from federation.transport.errors import DestinationUnreachable  # noqa: E402
from node.clock import ReactorClock  # noqa: E402
from node.rooms.service import RoomService  # noqa: E402
from rooms_support import (FakeAccounts, InlineDB, RecordingNotifier,  # noqa: E402,F401
                           result_of)

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
    svc = RoomService(db=db, clock=clock, server_name=server, signing_key=key,
                      accounts=accounts, notifier=RecordingNotifier())
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

    async def request(self, destination, method, path, json_body=None, query=None,
                      timeout=None):
        self.requests.append((destination, method, path, json_body, query))
        if destination in self.down:
            raise DestinationUnreachable(destination, "connection refused")
        if self.responder is not None:
            return await self.responder(destination, method, path, json_body, query)
        return self.status, {"pdus": {}}

    def transactions(self, destination: str) -> list[tuple[str, dict]]:
        """(txn_id, body) of every /send request that reached ``destination``'s network."""
        out = []
        for dest, method, path, body, _ in self.requests:
            if dest == destination and method == "PUT" and "/send/" in path \
                    and destination not in ():
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
            keys = auth_types_for_event(room.room_version, "m.room.member", user_id, user_id,
                                        content)
            auth = [room.state[k].event_id for k in keys if k in room.state]
            ev = build_event(room.room_version, server_name=server, signing_key=key,
                             type="m.room.member", sender=user_id, content=content,
                             room_id=room_id, prev_events=list(room.extremities),
                             auth_events=auth, depth=room.depth + 1,
                             origin_server_ts=svc.clock.time_ms(), state_key=user_id)
            check_auth(ev, room.state)
            d = svc._commit_locally(room, ev)
        await d
        return ev
    return result_of(go())


def fired(d):
    """The result of an already fired Deferred (or None when not fired)."""
    out = []
    if isinstance(d, defer.Deferred):
        d.addBoth(lambda r: (out.append(r), r)[1])
    return out[0] if out else None
