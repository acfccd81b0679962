"""``GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]``
(client-server API "Relationships API", ``relations.yaml``:
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidrelationseventid).

404 ``M_NOT_FOUND`` when the parent is unknown or the user may not see it; the children
come newest first (``dir=b``, the default) or oldest first (``dir=f``), each with its
bundled aggregations; ``recursion_depth`` is present exactly when ``recurse`` was given.
"""

from __future__ import annotations

from typing import Any

from ..relations_pages import children
from .common import V1

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def register(router: Any, service: Any) -> None:
    async def relations(
        req: Any,
        roomId: str,
        eventId: str,
        relType: str | None = None,
        eventType: str | None = None,
    ) -> tuple[int, dict]:
        limit = req.query_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        recurse = req.query_bool("recurse") if req.query("recurse") is not None else None
        page = await children(
            service,
            req.user_id,
            roomId,
            eventId,
            rel_type=relType,
            event_type=eventType,
            from_token=req.query("from"),
            to_token=req.query("to"),
            direction=req.query("dir") or "b",
            limit=limit,
            recurse=recurse,
        )
        chunk = [service.format_client_event(ev, requester=req.requester) for ev in page.chunk]
        await service.relations.add_bundles([(roomId, d) for d in chunk], req.requester)
        body: dict = {"chunk": chunk}
        if page.next_batch is not None:
            body["next_batch"] = page.next_batch
        if page.prev_batch is not None:
            body["prev_batch"] = page.prev_batch
        if page.recursion_depth is not None:
            body["recursion_depth"] = page.recursion_depth
        return 200, body

    base = V1 + "/rooms/{roomId}/relations/{eventId}"
    router.add("GET", base, relations)
    router.add("GET", base + "/{relType}", relations)
    router.add("GET", base + "/{relType}/{eventType}", relations)
