"""Receipts storage and delivery (client-server API "Receipts", ``m.receipt``).

One row per (room, receipt type, user, thread): writing a receipt replaces the previous row and
takes a new ``stream_id`` (the ``receipts`` part of sync tokens).  Writes are serialised by an
in-process lock so stream IDs commit in order (a sync never skips a receipt that commits late).

``m.read.private`` receipts are only ever shown to their owner.  Unthreaded receipts are stored
with ``thread_id`` "" and delivered without ``thread_id``; threaded ones carry it (``main`` or a
thread root's event ID).  A threaded receipt must name the thread its event is in
(``check_thread``): "main" for the main timeline (thread roots included), the root's ID
for an event in a thread.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson
from sqlalchemy import delete, func, insert, or_, select
from twisted.internet import defer

from federation.errors import InvalidParam
from node.rooms.relations_store import thread_of
from schema.events import events
from schema.sync import receipts

RECEIPT_TYPES = ("m.read", "m.read.private")
PRIVATE = "m.read.private"


def _write(
    conn: Any,
    room_id: str,
    receipt_type: str,
    user_id: str,
    thread_id: str,
    event_id: str,
    ts: int,
    data: dict,
) -> tuple[int, int | None]:
    event_stream = conn.execute(
        select(events.c.stream_ordering).where(events.c.event_id == event_id)
    ).scalar()
    conn.execute(
        delete(receipts).where(
            receipts.c.room_id == room_id,
            receipts.c.receipt_type == receipt_type,
            receipts.c.user_id == user_id,
            receipts.c.thread_id == thread_id,
        )
    )
    result = conn.execute(
        insert(receipts).values(
            room_id=room_id,
            receipt_type=receipt_type,
            user_id=user_id,
            thread_id=thread_id,
            event_id=event_id,
            event_stream=event_stream,
            ts=ts,
            data=orjson.dumps(data).decode(),
        )
    )
    return int(result.inserted_primary_key[0]), event_stream


def _rows_for_rooms(
    conn: Any, room_ids: list[str], since: int, upto: int | None, user_id: str
) -> list:
    visible = or_(receipts.c.receipt_type != PRIVATE, receipts.c.user_id == user_id)
    q = (
        select(
            receipts.c.room_id,
            receipts.c.receipt_type,
            receipts.c.user_id,
            receipts.c.thread_id,
            receipts.c.event_id,
            receipts.c.ts,
            receipts.c.data,
        )
        .where(receipts.c.room_id.in_(room_ids), receipts.c.stream_id > since, visible)
        .order_by(receipts.c.stream_id)
    )
    if upto is not None:
        q = q.where(receipts.c.stream_id <= upto)
    return list(conn.execute(q))


def _read_positions(conn: Any, user_id: str, room_ids: list[str]) -> dict[str, int]:
    q = (
        select(receipts.c.room_id, func.max(receipts.c.event_stream))
        .where(
            receipts.c.user_id == user_id,
            receipts.c.room_id.in_(room_ids),
            receipts.c.receipt_type.in_(RECEIPT_TYPES),
            receipts.c.thread_id.in_(("", "main")),
            receipts.c.event_stream.is_not(None),
        )
        .group_by(receipts.c.room_id)
    )
    return {room_id: int(pos) for room_id, pos in conn.execute(q) if pos is not None}


def _max_stream(conn: Any) -> int:
    return int(conn.execute(select(func.max(receipts.c.stream_id))).scalar() or 0)


def receipt_event(rows: Iterable) -> dict:
    """Batch receipt rows of one room into an ``m.receipt`` event."""
    content: dict = {}
    for _room, rtype, user_id, thread_id, event_id, ts, data in rows:
        body = orjson.loads(data) if data and data != "{}" else {}
        body["ts"] = ts
        if thread_id:
            body["thread_id"] = thread_id
        content.setdefault(event_id, {}).setdefault(rtype, {})[user_id] = body
    return {"type": "m.receipt", "content": content}


async def check_thread(db: Any, room_id: str, event_id: str, thread_id: str) -> None:
    """400 ``M_INVALID_PARAM`` when a threaded receipt's ``thread_id`` is not the thread
    ``event_id`` is in (``receipts.yaml``: "The event_id is not related to the
    thread_id"; "Threaded read receipts" says which thread an event is in).  A thread
    root is in the main timeline, but a receipt on it under its own thread is accepted:
    it is the start of that thread as a client shows it."""
    if thread_id == event_id:
        return
    actual = await db.read(thread_of, room_id, event_id)
    if actual != thread_id:
        raise InvalidParam(f"The event is in thread {actual!r}, not {thread_id!r}")


class ReceiptStore:
    def __init__(self, db: Any, notifier: Any, clock: Any) -> None:
        self.db = db
        self.notifier = notifier
        self.clock = clock
        self._lock = defer.DeferredLock()
        # (user, room) -> read-up-to stream ordering (0: none); dropped on each new receipt.
        self._read_pos: dict[tuple[str, str], int] = {}
        # ``fn(room_id, receipt_type, user_id, event_id, ts, thread_id)`` after each stored
        # receipt (federation sends its own users' public receipts to the room's servers).
        self.listeners: list = []

    async def load_position(self) -> int:
        pos = await self.db.run(_max_stream)
        self.notifier.set_current("receipts", pos)
        return pos

    async def set_receipt(
        self,
        room_id: str,
        receipt_type: str,
        user_id: str,
        event_id: str,
        thread_id: str | None = None,
    ) -> int:
        ts = self.clock.time_ms()
        await self._lock.acquire()
        try:
            stream_id, _ev = await self.db.run(
                _write, room_id, receipt_type, user_id, thread_id or "", event_id, ts, {}
            )
        finally:
            self._lock.release()
        self._read_pos.pop((user_id, room_id), None)
        for listener in self.listeners:
            try:
                listener(room_id, receipt_type, user_id, event_id, ts, thread_id)
            except Exception:  # a listener never breaks receipts
                import logging

                logging.getLogger("parta.sync").exception("receipt listener failed")
        if receipt_type == PRIVATE:
            self.notifier.notify_users([user_id], "receipts", stream_id)
        else:
            self.notifier.notify_room_stream(room_id, "receipts", stream_id)
        return stream_id

    async def receipts_for_rooms(
        self, room_ids: list[str], since: int, user_id: str, upto: int | None = None
    ) -> dict[str, dict]:
        """``m.receipt`` events per room with receipts in (since, upto] visible to user."""
        if not room_ids:
            return {}
        rows = await self.db.run(_rows_for_rooms, list(room_ids), since, upto, user_id)
        by_room: dict[str, list] = {}
        for row in rows:
            by_room.setdefault(row[0], []).append(row)
        return {room_id: receipt_event(rs) for room_id, rs in by_room.items()}

    async def read_positions(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """The stream ordering each room is read up to (``m.read``/``m.read.private``)."""
        out = {}
        missing = []
        for room_id in room_ids:
            pos = self._read_pos.get((user_id, room_id))
            if pos is None:
                missing.append(room_id)
            else:
                out[room_id] = pos
        if missing:
            found = await self.db.run(_read_positions, user_id, missing)
            if len(self._read_pos) > 200_000:
                self._read_pos.clear()
            for room_id in missing:
                pos = found.get(room_id, 0)
                self._read_pos[(user_id, room_id)] = pos
                out[room_id] = pos
        return {r: p for r, p in out.items() if p}
