"""``GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=`` (server-server API,
``events.yaml``): the event of the room nearest to ``ts`` in direction ``dir`` that the
requesting server may see.

The requesting server must have a joined member in the room or the room must be
``world_readable`` (403 ``M_FORBIDDEN`` otherwise, unknown rooms too); candidates are the
ones the client-server endpoint looks at (``node/rooms/timestamp.py``), each checked with
the history visibility rules for servers (``node/federation/access.py``); none: 404
``M_NOT_FOUND``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from federation.errors import InvalidParam
from federation.events.model import Event
from federation.transport import endpoints as E
from node.http.request import MissingParam
from node.rooms.timestamp import nearest_event, parse_dir

from ..access import ServerVisibility, require_room_access
from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext

MAX_TS = 2**63 - 1


def register(routes: Any, fctx: FederationContext) -> None:
    async def get_timestamp_to_event(req: Any, origin: str, roomId: str) -> tuple[int, dict]:
        if req.query("ts") is None:
            raise MissingParam("Missing 'ts'")
        ts = req.query_int("ts")
        if ts is None or not 0 <= ts <= MAX_TS:
            raise InvalidParam("'ts' must be a timestamp in milliseconds")
        if req.query("dir") is None:
            raise MissingParam("Missing 'dir'")
        direction = parse_dir(req.query("dir"))
        room = await require_room_access(fctx.rooms, roomId, origin)
        checker = ServerVisibility(fctx.rooms, room, origin)

        async def visible(evs: Sequence[Event]) -> list[Event]:
            return [ev for ev in evs if await checker.visible(ev)]

        return 200, await nearest_event(fctx.rooms, roomId, ts, direction, visible)

    serve(routes, E.TIMESTAMP_TO_EVENT, get_timestamp_to_event)
