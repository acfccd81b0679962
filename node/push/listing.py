"""``GET /notifications`` (client-server API "Listing Notifications",
https://spec.matrix.org/v1.16/client-server-api/#listing-notifications): the events that
notified the user, newest first, paginated by stream ordering (``next_token``), each with
the actions of the rule that matched, its time and whether the user has read it (per
their receipts, threaded ones included, and their own later events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from federation.errors import InvalidParam
from node.rooms.ignored import hides
from schema.push import push_notifications

from .counts import UnreadCounts

if TYPE_CHECKING:
    from node.rooms.service import RoomService

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _page(conn: Any, user_id: str, before: int | None, limit: int, highlight: bool) -> list:
    c = push_notifications.c
    q = select(c.room_id, c.event_id, c.stream_ordering, c.thread_id, c.actions, c.ts).where(
        c.user_id == user_id
    )
    if before is not None:
        q = q.where(c.stream_ordering < before)
    if highlight:
        q = q.where(c.highlight.is_(True))
    return list(conn.execute(q.order_by(c.stream_ordering.desc()).limit(limit)))


def parse_from(token: str | None) -> int | None:
    if token is None:
        return None
    if not token.isascii() or not token.isdigit() or len(token) > 19:
        raise InvalidParam("Invalid 'from' token")
    return int(token)


async def list_notifications(
    db: Any,
    rooms: RoomService,
    counts: UnreadCounts,
    requester: Any,
    token: str | None,
    limit: int,
    only: str | None,
) -> dict:
    user_id = requester.user_id
    ignored = rooms.ignored.of(user_id)
    rows = await db.read(_page, user_id, parse_from(token), limit, only == "highlight")
    events = await rooms.get_events([r[1] for r in rows])
    entries = {}
    for room_id in {r[0] for r in rows}:
        entries[room_id] = await counts.entry(user_id, room_id)
        if rooms.erasure.erased:  # decided from the timelines (node/rooms/erasure.py)
            in_room = [ev for ev in events.values() if ev.room_id == room_id]
            await rooms.erasure.prepare(rooms, room_id, user_id, in_room)
    out = []
    for room_id, event_id, stream, thread, actions, ts in rows:
        ev = events.get(event_id)
        if ev is None or hides(ev, ignored):  # ignored senders (node/rooms/ignored.py)
            continue
        out.append(
            {
                "actions": orjson.loads(actions),
                "event": rooms.format_client_event(ev, include_room_id=False, requester=requester),
                "read": entries[room_id].is_read(int(stream), thread),
                "room_id": room_id,
                "ts": int(ts),
            }
        )
    body: dict = {"notifications": out}
    if len(rows) == limit and rows:
        body["next_token"] = str(int(rows[-1][2]))
    return body
