"""Device-list tracking (client-server API "Tracking the device list for a user":
https://spec.matrix.org/v1.16/client-server-api/#tracking-the-device-list-for-a-user).

A client keeps the device lists of everyone it shares a room with and refreshes a user's
list when ``/sync`` (``device_lists.changed``) or ``/keys/changes`` names them; it stops
tracking users named in ``left``.  Changes are rows of one stream
(``e2ee_device_list_stream``):

- a user's keys changed (device keys uploaded, cross-signing keys, a remote
  ``m.device_list_update`` / ``m.signing_key_update``): ``(user, None, None)`` -- every
  user sharing a room with them sees them in ``changed``;
- a membership event ``(user, room, membership)`` (``on_persisted``): on a join, the
  room's members see the joiner in ``changed`` and the joiner sees every member; on a
  leave, whoever no longer shares any room with the other lands in ``left``.

Reading is bounded: at most ``MAX_ROWS`` rows per computation; past that, everyone the
client shares a room with counts as changed (correct, only more key queries).  The rows
recorded since start-up (the latest ``RECENT_ROWS`` to ``2 * RECENT_ROWS``) are also
kept in memory, so a sync whose token is recent reads them without a database query.

Our users' key changes go to the other servers sharing a room with them as
``m.device_list_update`` EDUs (server-server API "Device Management"), their
cross-signing keys as ``m.signing_key_update``.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any, Iterable, Sequence

from twisted.internet import defer

from . import stream_store
from .hooks import RemoteKeys, RoomsView, UsersNotifier

log = logging.getLogger("parta.e2ee")

MAX_ROWS = 5000
RECENT_ROWS = 10_000
STREAM = "device_lists"
MEMBER = "m.room.member"


def _server(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


class DeviceLists:
    def __init__(
        self, *, db: Any, rooms: RoomsView, notifier: UsersNotifier, server_name: str
    ) -> None:
        self.db = db
        self.rooms = rooms
        self.notifier = notifier
        self.server_name = server_name
        self.remote: RemoteKeys | None = None
        # Rows are numbered and committed in order, so a token never passes a row that
        # commits later (PostgreSQL sequences would not promise that across transactions).
        self._lock = defer.DeferredLock()
        # Rows after ``_covered_from`` are all in ``_ids`` / ``_rows`` (None: unknown yet).
        self._covered_from: int | None = None
        self._ids: list[int] = []
        self._rows: list[tuple[str, str | None, str | None]] = []

    def loaded(self, position: int) -> None:
        """Every row up to ``position`` is in the database; later ones pass ``_record``."""
        if self._covered_from is None:
            self._covered_from = position
            keep = [i for i, stream_id in enumerate(self._ids) if stream_id > position]
            self._ids = [self._ids[i] for i in keep]
            self._rows = [self._rows[i] for i in keep]

    async def _record(self, rows: Sequence[tuple[str, str | None, str | None]]) -> int:
        async with self._lock:
            ids = await self.db.run(stream_store.add_changes, rows)
            self._ids.extend(ids)
            self._rows.extend(rows)
            if len(self._ids) > 2 * RECENT_ROWS:
                if self._covered_from is not None:
                    self._covered_from = self._ids[-RECENT_ROWS - 1]
                del self._ids[:-RECENT_ROWS]
                del self._rows[:-RECENT_ROWS]
            return max(ids, default=0)

    async def _between(self, since: int, upper: int) -> list[tuple[str, str | None, str | None]]:
        covered = self._covered_from
        if covered is not None and since >= covered:
            lo = bisect.bisect_right(self._ids, since)
            hi = bisect.bisect_right(self._ids, upper)
            return self._rows[lo : min(hi, lo + MAX_ROWS + 1)]
        return await self.db.run(stream_store.changes_between, since, upper, MAX_ROWS)

    async def _co_members(self, user_id: str) -> tuple[set[str], list[str]]:
        """Everyone sharing a joined room with ``user_id`` (with them), and those rooms."""
        rows = await self.rooms.get_rooms_for_user(user_id, ["join"])
        members: set[str] = {user_id}
        room_ids = []
        for room_id, _m, _ev in rows:
            room_ids.append(room_id)
            members |= await self._joined(room_id)
        return members, room_ids

    async def _joined(self, room_id: str) -> set[str]:
        try:
            return set((await self.rooms.get_room(room_id)).joined)
        except Exception:  # noqa: BLE001 - a room we cannot load has no members to tell
            return set()

    # --- producers ------------------------------------------------------------------------
    async def keys_changed(self, user_id: str, edu: tuple[str, dict] | None = None) -> None:
        """``user_id``'s keys changed: tell local co-members' syncs and, for our users, the
        servers sharing a room with them (``edu``: the EDU type and content, whose
        ``stream_id`` is filled in here)."""
        members, _rooms = await self._co_members(user_id)
        local = [u for u in members if _server(u) == self.server_name]
        if not local:
            return  # another server's user nobody here shares a room with: nothing to tell
        pos = await self._record([(user_id, None, None)])
        self.notifier.notify_users(local, STREAM, pos)
        if edu is not None and self.remote is not None and _server(user_id) == self.server_name:
            servers = {_server(u) for u in members} - {self.server_name}
            if servers:
                edu_type, content = edu
                if "stream_id" in content:
                    content = dict(content, stream_id=pos)
                self.remote.send_edu(sorted(servers), edu_type, content)

    def on_persisted(self, evs: Iterable[Any]) -> None:
        """Rooms persister hook: membership changes start or end sharing a room."""
        rows: list[tuple[str, str | None, str | None]] = [
            (ev.state_key, ev.room_id, str(ev.content.get("membership")))
            for ev in evs
            if ev.type == MEMBER and isinstance(ev.state_key, str)
        ]
        if rows:
            d = defer.ensureDeferred(self._memberships(rows))
            d.addErrback(lambda f: log.error("event=device_list_membership_failed %s", f.value))

    async def _memberships(self, rows: list[tuple[str, str | None, str | None]]) -> None:
        pos = await self._record(rows)
        users: set[str] = set()
        for user_id, room_id, _m in rows:
            users.add(user_id)
            if room_id is not None:
                users |= await self._joined(room_id)
        self.notifier.notify_users(
            [u for u in users if _server(u) == self.server_name], STREAM, pos
        )

    # --- readers --------------------------------------------------------------------------
    async def changes(
        self, user_id: str, since: int, upper: int, joined: Iterable[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """(changed, left) for ``user_id`` between two device-list positions."""
        if upper <= since:
            return [], []
        rows = await self._between(since, upper)
        if not rows:
            return [], []
        if joined is None:
            sharing, room_ids = await self._co_members(user_id)
        else:
            room_ids = list(joined)
            sharing = {user_id}
            for room_id in room_ids:
                sharing |= await self._joined(room_id)
        if len(rows) > MAX_ROWS:
            return sorted(sharing), []
        my_rooms = set(room_ids)
        changed: set[str] = set()
        left: set[str] = set()
        for other, in_room, membership in rows:
            if in_room is None:
                if other in sharing:
                    changed.add(other)
            elif other == user_id:
                members = await self._joined(in_room)
                if membership == "join":
                    changed |= members
                else:
                    left |= members
            elif in_room in my_rooms:
                (changed if membership == "join" else left).add(other)
        left = {u for u in left if u not in sharing}
        changed = {u for u in changed if u in sharing}
        return sorted(changed), sorted(left)
