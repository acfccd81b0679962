"""``GET /_matrix/client/v3/rooms/{roomId}/messages`` (client-server API "Getting events for
a room", ``message_pagination.yaml``)."""

from __future__ import annotations

from typing import Any

from federation.errors import InvalidParam
from node.http.request import MissingParam

from ..pagination import paginate
from .common import V3
from .filter_param import room_event_filter

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


def register(router: Any, service: Any) -> None:
    async def messages(req: Any, roomId: str) -> tuple[int, dict]:
        direction = req.query("dir")
        if direction is None:
            raise MissingParam("Missing 'dir' parameter")
        if direction not in ("b", "f"):
            raise InvalidParam("'dir' must be 'b' or 'f'")
        limit = req.query_int("limit", DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
        page = await paginate(
            service,
            req.user_id,
            roomId,
            from_token=req.query("from"),
            to_token=req.query("to"),
            direction=direction,
            limit=limit,
            event_filter=room_event_filter(req),
        )
        chunk = [service.format_client_event(ev, requester=req.requester) for ev in page.chunk]
        await service.relations.add_bundles([(roomId, d) for d in chunk], req.requester)
        body: dict = {"start": page.start, "chunk": chunk}
        if page.end is not None:
            body["end"] = page.end
        if page.state:
            body["state"] = [
                service.format_client_event(ev, requester=req.requester) for ev in page.state
            ]
        return 200, body

    router.add("GET", V3 + "/rooms/{roomId}/messages", messages)
