"""``GET /_matrix/client/v1/rooms/{roomId}/threads`` (client-server API "Querying threads
in a room", ``threads_list.yaml``:
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidthreads).

Thread roots ordered by their latest reply, each with its bundled aggregations (the
``m.thread`` summary among them); ``include=participated`` keeps the threads the user
started or replied to.  403 for a user who may not read the room; 400 ``M_INVALID_PARAM``
for an unknown ``include``, a ``limit`` below 1 or a malformed ``from``.
"""

from __future__ import annotations

from typing import Any

from federation.errors import InvalidParam

from ..relations_pages import threads
from .common import V1

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def register(router: Any, service: Any) -> None:
    async def list_threads(req: Any, roomId: str) -> tuple[int, dict]:
        limit = req.query_int("limit", DEFAULT_LIMIT, maximum=MAX_LIMIT)
        if limit < 1:
            raise InvalidParam("'limit' must be greater than zero")
        page = await threads(
            service,
            req.user_id,
            roomId,
            include=req.query("include") or "all",
            from_token=req.query("from"),
            limit=limit,
        )
        chunk = [service.format_client_event(ev, requester=req.requester) for ev in page.chunk]
        await service.relations.add_bundles([(roomId, d) for d in chunk], req.requester)
        body: dict = {"chunk": chunk}
        if page.next_batch is not None:
            body["next_batch"] = page.next_batch
        return 200, body

    router.add("GET", V1 + "/rooms/{roomId}/threads", list_threads)
