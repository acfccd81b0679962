"""Account data storage (client-server API "Client Config"; also holds ``m.fully_read``).

Global account data has ``room_id`` ""; per-room data carries the room ID.  Every write takes a
new ``stream_id`` (the ``account_data`` part of sync tokens); writes are serialised in-process
so the IDs commit in order.  Server-managed types (``m.fully_read``, ``m.push_rules``) are
refused by the API layer, not here: the read markers module writes ``m.fully_read`` through
``set``.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from sqlalchemy import delete, func, insert, select
from twisted.internet import defer

from schema.sync import account_data

SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})


def _write(conn: Any, user_id: str, room_id: str, type_: str, text: str) -> int:
    conn.execute(
        delete(account_data).where(
            account_data.c.user_id == user_id,
            account_data.c.room_id == room_id,
            account_data.c.type == type_,
        )
    )
    result = conn.execute(
        insert(account_data).values(user_id=user_id, room_id=room_id, type=type_, content=text)
    )
    return int(result.inserted_primary_key[0])


def _read(conn: Any, user_id: str, room_id: str, type_: str) -> str | None:
    return conn.execute(
        select(account_data.c.content).where(
            account_data.c.user_id == user_id,
            account_data.c.room_id == room_id,
            account_data.c.type == type_,
        )
    ).scalar()


def _since(conn: Any, user_id: str, since: int, upto: int | None) -> list:
    q = (
        select(account_data.c.room_id, account_data.c.type, account_data.c.content)
        .where(account_data.c.user_id == user_id, account_data.c.stream_id > since)
        .order_by(account_data.c.stream_id)
    )
    if upto is not None:
        q = q.where(account_data.c.stream_id <= upto)
    return list(conn.execute(q))


def _max_stream(conn: Any) -> int:
    return int(conn.execute(select(func.max(account_data.c.stream_id))).scalar() or 0)


class AccountDataStore:
    def __init__(self, db: Any, notifier: Any) -> None:
        self.db = db
        self.notifier = notifier
        self._lock = defer.DeferredLock()
        # Server-managed global types whose current content another area keeps (the push
        # area's ``m.push_rules``): ``GET .../account_data/{type}`` answers from here, so a
        # user who never changed a rule still reads the server-default ruleset.
        self.readers: dict[str, Callable[[str], dict]] = {}
        # Global types another area keeps in memory (the rooms area's ignored users): the
        # check refuses content before it is written, the watcher learns the new content.
        self.checks: dict[str, Callable[[dict], None]] = {}
        self.watchers: dict[str, Callable[[str, dict], None]] = {}

    async def load_position(self) -> int:
        pos = await self.db.run(_max_stream)
        self.notifier.set_current("account_data", pos)
        return pos

    async def set(self, user_id: str, room_id: str | None, type_: str, content: dict) -> int:
        check = self.checks.get(type_) if room_id is None else None
        if check is not None:
            check(content)
        text = orjson.dumps(content).decode()
        await self._lock.acquire()
        try:
            stream_id = await self.db.run(_write, user_id, room_id or "", type_, text)
        finally:
            self._lock.release()
        watcher = self.watchers.get(type_) if room_id is None else None
        if watcher is not None:
            watcher(user_id, content)
        self.notifier.notify_users([user_id], "account_data", stream_id)
        return stream_id

    async def get(self, user_id: str, room_id: str | None, type_: str) -> dict | None:
        text = await self.db.run(_read, user_id, room_id or "", type_)
        return None if text is None else orjson.loads(text)

    async def changes_since(
        self, user_id: str, since: int, upto: int | None = None
    ) -> tuple[list[dict], dict[str, list[dict]]]:
        """(global events, room ID -> events) changed in (since, upto] (all when 0)."""
        rows = await self.db.run(_since, user_id, since, upto)
        global_events: list[dict] = []
        rooms: dict[str, list[dict]] = {}
        for room_id, type_, text in rows:
            ev = {"type": type_, "content": orjson.loads(text)}
            if room_id:
                rooms.setdefault(room_id, []).append(ev)
            else:
                global_events.append(ev)
        return global_events, rooms
