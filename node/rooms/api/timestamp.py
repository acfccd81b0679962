"""``GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event`` (client-server API,
``room_event_by_timestamp.yaml``): the ID of the event nearest to ``ts`` in direction
``dir`` that the caller may see.

Non-members of a room that is not ``world_readable`` get 403 ``M_FORBIDDEN`` (as for
``/messages``); no visible event in that direction is 404 ``M_NOT_FOUND``.  This
node's copy of the room is searched first; when it may lack the answer the room's other
servers are asked (``node/rooms/timestamp.py``, ``nearest_event_or_remote``).
"""

from __future__ import annotations

from typing import Any, Sequence

from federation.errors import InvalidParam
from federation.events.model import Event

from ...http.request import MissingParam
from ..access import may_read_history
from ..timestamp import nearest_event_or_remote, parse_dir
from .common import V1

MAX_TS = 2**63 - 1


def parse_ts(req: Any) -> int:
    if req.query("ts") is None:
        raise MissingParam("Missing 'ts'")
    ts = req.query_int("ts")
    if ts is None or ts < 0 or ts > MAX_TS:
        raise InvalidParam("'ts' must be a timestamp in milliseconds")
    return ts


def register(router: Any, service: Any) -> None:
    async def get_timestamp_to_event(req: Any, roomId: str) -> tuple[int, dict]:
        ts = parse_ts(req)
        if req.query("dir") is None:
            raise MissingParam("Missing 'dir'")
        direction = parse_dir(req.query("dir"))
        await may_read_history(service, req.user_id, roomId)
        user_id = req.user_id

        async def visible(evs: Sequence[Event]) -> list[Event]:
            return await service.filter_events_for_user(user_id, roomId, evs)

        return 200, await nearest_event_or_remote(service, roomId, ts, direction, visible)

    router.add(
        "GET",
        V1 + "/rooms/{roomId}/timestamp_to_event",
        get_timestamp_to_event,
        rate_limited=True,
    )
