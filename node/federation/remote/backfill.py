"""``/messages`` past the start of this server's copy of a room: ``/backfill`` from a
server in the room.

Spec: server-server API "Backfilling and retrieving missing events": "it's possible that
[users] might step backwards far enough into history before the homeserver itself was a
member of that room ... To request more history, the requesting homeserver picks another
homeserver that it thinks may have more (most likely this should be a homeserver for some
of the existing users in the room ...)" -- ``GET /_matrix/federation/v1/backfill/{roomId}
?v=...&limit=...`` (``backfill.yaml``): the events in ``v`` and those that preceded them.

The earliest event we have is the starting point; the room's other servers are asked in
turn (the room creator's server first) until one gives new events, which the inbound side
checks and stores below the room's history (``Ingest.persist_backfilled``).  A room whose
history we hold back to its create event is never asked about; a room where nobody had
more is not asked again for ``QUIET_MS``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from federation.errors import NotFound
from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError

if TYPE_CHECKING:
    from ..ingest import Ingest

log = logging.getLogger("parta.federation.backfill")

QUIET_MS = 60_000
MAX_LIMIT = 100


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class Backfiller:
    def __init__(
        self,
        *,
        rooms: Any,
        client: Any,
        clock: Any,
        server_name: str,
        ingest: Ingest,
        policy: Any = None,
        timeout: float = 20.0,
    ) -> None:
        self.rooms = rooms
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.ingest = ingest
        self.policy = policy
        self.timeout = timeout
        self._quiet_until: dict[str, int] = {}

    async def backfill(self, room_id: str, limit: int) -> int:
        """Fetch older events of ``room_id``; how many new events were stored."""
        now = self.clock.time_ms()
        if self._quiet_until.get(room_id, 0) > now:
            return 0
        try:
            room = await self.rooms.get_room(room_id)
        except NotFound:
            return 0
        earliest = await self.rooms.get_events_in_range(room_id, None, None, 1, "f")
        if (
            not earliest
            or earliest[0].type == "m.room.create"
            or ("m.room.create", "") not in room.state
        ):
            return 0
        start = earliest[0]
        create = room.state[("m.room.create", "")]
        servers = [_domain(create.sender)] + sorted({_domain(u) for u in room.joined})
        tried: list[str] = []
        for server in servers:
            if not server or server == self.server_name or server in tried:
                continue
            if self.policy is not None and not self.policy.allow_outbound(server):
                continue
            tried.append(server)
            try:
                status, body = await self.client.request(
                    server,
                    E.BACKFILL.method,
                    E.BACKFILL.path(room_id),
                    query={"v": [start.event_id], "limit": max(1, min(limit + 1, MAX_LIMIT))},
                    timeout=self.timeout,
                )
            except FederationRequestError as exc:
                log.info(
                    "event=backfill_failed room_id=%s server=%s error=%s",
                    room_id,
                    server,
                    exc.message,
                )
                continue
            pdus = body.get("pdus") if status == 200 and isinstance(body, dict) else None
            if not isinstance(pdus, list):
                log.info(
                    "event=backfill_refused room_id=%s server=%s status=%s", room_id, server, status
                )
                continue
            new = await self.ingest.persist_backfilled(server, room_id, pdus)
            if new:
                log.info(
                    "event=backfilled room_id=%s server=%s events=%d", room_id, server, len(new)
                )
                return len(new)
        self._quiet_until[room_id] = now + QUIET_MS
        return 0
