"""The client ``timestamp_to_event`` past this server's copy of a room: ask the room's
other servers.

Spec: client-server API "GET /timestamp_to_event"
(https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidtimestamp_to_event):
"If the server does not have all of the room history and does not have an event
suitably close to the requested timestamp, it can use the corresponding federation
endpoint to ask other servers for a suitable event" -- ``GET
/_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=`` (server-server API,
``events.yaml``).

The rooms area decides when to ask (nothing found locally, or the found event sits next
to a gap in our copy: ``node/rooms/timestamp.py``) through ``RoomHooks.timestamp_to_event``.
Up to ``MAX_SERVERS`` servers of the room are asked in turn (the creator's server first,
then the joined members' servers; never our own, never one the policy refuses), each
with ``TIMEOUT_S``.  An answer is not trusted: its event is fetched with ``GET /event``
and stored through the backfill path (``Ingest.persist_backfilled``: format, signature,
hashes and auth checks), so the client can go on with ``/context``; its timestamp is
read from the checked event, and an event on the wrong side of ``ts`` or in another
room is ignored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from federation.errors import NotFound
from federation.events.model import Event
from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError

from ..remote_fetch import RemoteEvents

if TYPE_CHECKING:
    from ..ingest import Ingest

log = logging.getLogger("parta.federation.timestamp")

MAX_SERVERS = 3
TIMEOUT_S = 10.0


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class RemoteTimestamps:
    """``node.rooms.hooks.RemoteTimestamp`` over federation."""

    def __init__(
        self,
        *,
        rooms: Any,
        client: Any,
        server_name: str,
        ingest: Ingest,
        policy: Any = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.rooms = rooms
        self.client = client
        self.server_name = server_name
        self.ingest = ingest
        self.policy = policy
        self.timeout = timeout
        self.remote = RemoteEvents(client, timeout=timeout)

    def _servers(self, room: Any) -> list[str]:
        create = room.state.get(("m.room.create", ""))
        first = [_domain(create.sender)] if create is not None else []
        out: list[str] = []
        for server in first + sorted({_domain(u) for u in room.joined}):
            if not server or server == self.server_name or server in out:
                continue
            if self.policy is not None and not self.policy.allow_outbound(server):
                continue
            out.append(server)
            if len(out) >= MAX_SERVERS:
                break
        return out

    async def __call__(self, room_id: str, ts: int, direction: str) -> Event | None:
        try:
            room = await self.rooms.get_room(room_id)
        except NotFound:
            return None
        for server in self._servers(room):
            ev = await self._ask(server, room_id, ts, direction)
            if ev is not None:
                return ev
        return None

    async def _ask(self, server: str, room_id: str, ts: int, direction: str) -> Event | None:
        try:
            status, body = await self.client.request(
                server,
                E.TIMESTAMP_TO_EVENT.method,
                E.TIMESTAMP_TO_EVENT.path(room_id),
                query={"ts": str(ts), "dir": direction},
                timeout=self.timeout,
            )
        except FederationRequestError as exc:
            log.info(
                "event=timestamp_to_event_failed room_id=%s server=%s error=%s",
                room_id,
                server,
                exc.message,
            )
            return None
        event_id = body.get("event_id") if status == 200 and isinstance(body, dict) else None
        if not isinstance(event_id, str) or not event_id.startswith("$") or len(event_id) > 255:
            return None
        ev = (await self.rooms.get_events([event_id])).get(event_id)
        if ev is None:
            pdu = await self.remote.event(server, event_id)
            if pdu is None:
                return None
            stored = await self.ingest.persist_backfilled(server, room_id, [pdu])
            ev = next((e for e in stored if e.event_id == event_id), None)
            if ev is None:
                ev = (await self.rooms.get_events([event_id])).get(event_id)
        if ev is None or ev.room_id != room_id or ev.rejected_reason is not None:
            return None
        on_side = ev.origin_server_ts >= ts if direction == "f" else ev.origin_server_ts <= ts
        return ev if on_side else None
