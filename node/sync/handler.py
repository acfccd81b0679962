"""The ``/sync`` handler (client-server API "Syncing", ``GET /_matrix/client/v3/sync``).

One computation answers "what changed for this user between ``since`` and now":

- the *upper* token is read first (events: the rooms area's committed stream ordering; typing
  serial; receipts and account data positions), every query is bounded by it, and it becomes
  ``next_batch``;
- memberships come from a per-user cache invalidated by the notifier (membership events name
  their target user) plus, for an incremental sync, the user's membership changes since the
  token: joins (full state), invites (stripped state), leaves/kicks/bans (``rooms.leave``);
- for joined rooms only rooms whose events, typing or receipts moved past the token (the
  notifier's in-memory positions) or that got account data are looked at -- no scan of all
  rooms' events;
- an empty incremental answer waits on the notifier (long poll) and is recomputed when woken.

History visibility is enforced for every timeline a user gets while their membership changed
(initial syncs, new joins, leaves); a room the user stayed joined to since the token only has
events the user may see (rule 2: they were joined).

The sections of the answer live beside this module: ``joined_rooms.py`` (with
``lazy_members.py`` and ``unread_counts.py``), ``left_rooms.py``; ``params.py`` holds
``SyncParams`` (re-exported here) and the per-computation state they share.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from federation.events.model import Event
from node.push.service import PushService
from node.rooms.visibility import Timeline as MembershipTimeline
from node.stream_tokens import StreamToken

from . import queries
from .ignored import hidden_invite
from .joined_rooms import JoinedRooms
from .lazy_members import LazyMembers
from .left_rooms import LeftRooms
from .params import SyncParams, SyncRun
from .push_counts import PushUnread
from .room_state import RoomStateReader, stream_of
from .unread import UnreadCache
from .unread_counts import UnreadCounts

if TYPE_CHECKING:
    from node.e2ee.service import E2eeService

    from .presence import PresenceManager

__all__ = ["SyncHandler", "SyncParams", "WaitHandle"]

log = logging.getLogger("parta.sync")

_MEMBERSHIP_CACHE = 20_000


class WaitHandle:
    """Lets the HTTP layer abandon a long poll when the client disconnects."""

    __slots__ = ("deferred", "gone")

    def __init__(self) -> None:
        self.deferred: defer.Deferred | None = None
        self.gone = False

    def cancel(self) -> None:
        self.gone = True
        d = self.deferred
        if d is not None and not d.called:
            d.cancel()


class SyncHandler:
    def __init__(
        self,
        *,
        db: Any,
        rooms: Any,
        notifier: Any,
        typing: Any,
        receipts: Any,
        account_data: Any,
        clock: Any,
    ) -> None:
        self.db = db
        self.rooms = rooms
        self.notifier = notifier
        self.typing = typing
        self.receipts = receipts
        self.account_data = account_data
        self.clock = clock
        self.presence: PresenceManager | None = None  # set by wiring (node/sync/presence.py)
        self.state = RoomStateReader(db, rooms)
        self.unread = UnreadCache()
        self.push: PushService | None = None  # set by wiring (node/push)
        self.e2ee: E2eeService | None = None  # set by wiring (node/e2ee)
        self._unread_counts = UnreadCounts(db, notifier, self.state, self.unread)
        self._joined = JoinedRooms(
            rooms=rooms,
            notifier=notifier,
            typing=typing,
            state=self.state,
            lazy=LazyMembers(),
            unread=self._unread_counts,
        )
        self._left = LeftRooms(rooms=rooms, state=self.state)
        self._memberships_cache: OrderedDict[str, tuple[int, dict]] = OrderedDict()
        self._start_lock = defer.DeferredLock()
        self._loaded = False
        # Positions at start-up: in-memory positions say nothing about older tokens.
        self._start = StreamToken()

    @property
    def push_unread(self) -> PushUnread | None:
        """The push area's unread counts (set by ``push_link.py``); ``None``: counted here."""
        return self._unread_counts.push

    @push_unread.setter
    def push_unread(self, value: PushUnread | None) -> None:
        self._unread_counts.push = value

    # --- start-up -------------------------------------------------------------------------
    async def start(self) -> None:
        """Seed the notifier's positions from the database (once, on first use)."""
        if self._loaded:
            return
        async with self._start_lock:
            if not self._loaded:
                await self._load()
                self._loaded = True

    async def _load(self) -> None:
        positions = await self.db.run(queries.latest_stream_per_room)
        self.notifier.load_room_positions(positions)
        receipts = await self.receipts.load_position()
        account_data = await self.account_data.load_position()
        self._start = StreamToken(max(positions.values(), default=0), 0, receipts, account_data)
        if self.e2ee is not None:
            await self.e2ee.start()  # seeds the notifier's to_device / device_lists positions

    # --- entry point ----------------------------------------------------------------------
    async def sync(self, p: SyncParams, waiting: WaitHandle | None = None) -> dict:
        """Answer a ``/sync``.  ``waiting.cancel()`` (client gone) ends a long poll early
        (``CancelledError`` when it was waiting)."""
        await self.start()
        since = p.since
        if since is not None and since.typing > self.typing.serial:
            since = since.copy_with(typing=0)  # typing serials restarted with the node
        if since is not None and since.presence > (self.presence.serial if self.presence else 0):
            since = since.copy_with(presence=0)  # so did presence serials
        deadline = self.clock.time_ms() + max(0, p.timeout_ms)
        while True:
            response, empty, wait_rooms, upper = await self._compute(p, since)
            if not empty or since is None or p.full_state:
                return response
            remaining = deadline - self.clock.time_ms()
            if remaining <= 0 or (waiting is not None and waiting.gone):
                return response
            d = self.notifier.wait(p.user_id, wait_rooms, upper, remaining)
            if waiting is not None:
                waiting.deferred = d
            woken = await d
            if not woken:
                return response

    # --- memberships ----------------------------------------------------------------------
    def _user_events_pos(self, user_id: str) -> int:
        return self.notifier.user_pos.get(user_id, {}).get("events", 0)

    async def _memberships(self, user_id: str, fresh: bool = False) -> dict[str, tuple[str, Event]]:
        """room -> (membership, member event), forgotten rooms excluded.  Cached until the
        notifier reports a membership event for the user (``fresh``: reload anyway, e.g.
        for a full sync after the user forgot a room)."""
        marker = self._user_events_pos(user_id)
        hit = self._memberships_cache.get(user_id)
        if hit is not None and hit[0] >= marker and not fresh:
            self._memberships_cache.move_to_end(user_id)
            return dict(hit[1])
        rows = await self.rooms.get_rooms_for_user(user_id)
        data = {room_id: (membership, ev) for room_id, membership, ev in rows}
        self._memberships_cache[user_id] = (marker, data)
        if len(self._memberships_cache) > _MEMBERSHIP_CACHE:
            self._memberships_cache.popitem(last=False)
        return dict(data)

    # --- one computation ------------------------------------------------------------------
    async def _compute(
        self, p: SyncParams, since: StreamToken | None
    ) -> tuple[dict, bool, list[str], StreamToken]:
        user_id = p.user_id
        f = p.filter
        initial = since is None
        full = initial or p.full_state
        # ``since`` is read only for incremental syncs, where it is set.
        last = since if since is not None else StreamToken()
        upper = StreamToken(
            self.rooms.current_stream_ordering(),
            self.typing.serial,
            self.notifier.current["receipts"],
            self.notifier.current["account_data"],
            self.presence.serial if self.presence is not None else 0,
            self.notifier.current.get("to_device", 0),
            self.notifier.current.get("device_lists", 0),
        )
        memberships = await self._memberships(user_id, fresh=full)
        changes: dict[str, tuple[str, Event]] = {}
        if not initial and (
            last.events < self._start.events or self._user_events_pos(user_id) > last.events
        ):
            for room_id, membership, ev in await self.rooms.user_memberships_changed(
                user_id, last.events
            ):
                changes[room_id] = (membership, ev)
                memberships[room_id] = (membership, ev)
        # Membership events committed after ``upper`` was read: move ``upper`` past them
        # (everything before a committed event is committed too).
        top = max(
            (
                stream_of(ev) or 0
                for _, ev in (memberships.values() if initial else changes.values())
            ),
            default=0,
        )
        if top > upper.events:
            upper = upper.copy_with(events=top)

        run = SyncRun(
            p=p, since=since, upper=upper, full=full, ignored=self.rooms.ignored.of(user_id)
        )
        response: dict = {
            "next_batch": str(upper),
            "rooms": {"join": {}, "invite": {}, "leave": {}, "knock": {}},
            "account_data": {"events": []},
            "presence": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
        }

        # Account data (global and per room).
        ad_global: list[dict] = []
        if (
            full
            or last.account_data < self._start.account_data
            or self.notifier.user_pos.get(user_id, {}).get("account_data", 0) > last.account_data
        ):
            ad_global, run.ad_rooms = await self.account_data.changes_since(
                user_id, 0 if full else last.account_data, upper.account_data
            )
        if full and self.push is not None:  # every initial sync has m.push_rules (node/push)
            ad_global = [e for e in ad_global if e["type"] != "m.push_rules"]
            rules = self.push.push_rules_content(user_id)
            ad_global.append({"type": "m.push_rules", "content": rules})
        response["account_data"]["events"] = [
            e for e in ad_global if f.account_data.allows(e["type"])
        ]

        joined = [r for r, (m, _) in memberships.items() if m == "join" and f.room_allowed(r)]
        full_rooms: dict[str, int | None] = {}  # room -> lower bound (None: from start)
        visibility: dict[str, tuple] = {}
        inc_rooms: set[str] = set()
        if full:
            lower = None if initial else last.events
            full_rooms = {r: lower for r in joined}
        else:
            joined_set = set(joined)
            for room_id, (membership, _ev) in changes.items():
                if membership != "join" or room_id not in joined_set:
                    continue
                vis = await self.rooms.visibility_timelines(room_id, user_id)
                if self._stayed_joined(vis[0], last.events, upper.events):
                    inc_rooms.add(room_id)  # e.g. a display name change
                else:
                    full_rooms[room_id] = None  # a new join: full state
                    visibility[room_id] = vis
            inc_rooms |= self.notifier.rooms_changed_since(joined, since)
            inc_rooms |= joined_set & set(run.ad_rooms)
            receipt_rooms = [r for r in joined if r not in full_rooms]
            if not (
                last.receipts < self._start.receipts
                or self.notifier.user_pos.get(user_id, {}).get("receipts", 0) > last.receipts
            ):
                rr = self.notifier.room_receipts
                receipt_rooms = [r for r in receipt_rooms if rr.get(r, 0) > last.receipts]
            if receipt_rooms:
                run.receipts.update(
                    await self.receipts.receipts_for_rooms(
                        receipt_rooms, last.receipts, user_id, upper.receipts
                    )
                )
                inc_rooms |= set(run.receipts)
            inc_rooms -= set(full_rooms)
        if self.presence is not None:  # presence (module "Presence")
            newcomers: set[str] = set()  # members of rooms joined since the token
            for room_id in () if full else full_rooms:
                newcomers |= (await self.rooms.get_room(room_id)).joined
            response["presence"]["events"] = [
                e
                for e in await self.presence.sync_events(
                    user_id, None if initial else last.presence, upper.presence, newcomers
                )
                if f.presence.allows(e["type"], e["sender"])
            ]
        if full_rooms:
            run.receipts.update(
                await self.receipts.receipts_for_rooms(list(full_rooms), 0, user_id, upper.receipts)
            )
        run.read_pos = await self.receipts.read_positions(
            user_id, list(full_rooms) + sorted(inc_rooms)
        )

        join_out = response["rooms"]["join"]
        for room_id, lower in full_rooms.items():
            join_out[room_id] = await self._joined.full(
                run, room_id, lower, visibility.get(room_id)
            )
        for room_id in sorted(inc_rooms):
            entry = await self._joined.incremental(run, room_id)
            if entry is not None:
                join_out[room_id] = entry

        # Invites, knocks and leaves.
        if full:
            listed = {r: v for r, v in memberships.items() if f.room_allowed(r)}
        else:
            listed = {r: v for r, v in changes.items() if f.room_allowed(r)}
        for room_id, (membership, ev) in listed.items():
            if membership == "invite":
                if hidden_invite(ev, run.ignored):  # node/sync/ignored.py
                    continue
                response["rooms"]["invite"][room_id] = {
                    "invite_state": {"events": await self.rooms.stripped_state(room_id, [ev])}
                }
            elif membership == "knock":
                response["rooms"]["knock"][room_id] = {
                    "knock_state": {"events": await self.rooms.stripped_state(room_id, [ev])}
                }
            elif membership in ("leave", "ban"):
                # Without ``include_leave`` a full sync still reports rooms the user was
                # kicked or banned from (so they learn why the room went away), not rooms
                # they left themselves.
                if (
                    full
                    and room_id not in changes
                    and not f.room.include_leave
                    and membership == "leave"
                    and ev.sender == user_id
                ):
                    continue
                lower = None if full else last.events
                response["rooms"]["leave"][room_id] = await self._left.entry(
                    run, room_id, ev, lower
                )

        e2ee_news = False
        if self.e2ee is not None:  # to_device, device_lists, one-time key counts (node/e2ee)
            section = await self.e2ee.sync_section(
                user_id,
                getattr(p.requester, "device_id", None),
                since,
                upper,
                [r for r, (m, _) in memberships.items() if m == "join"],
            )
            section.fill(response)
            e2ee_news = section.has_news
            if section.to_device_pos != upper.to_device:  # more messages wait: next answer
                upper = upper.copy_with(to_device=section.to_device_pos)
                response["next_batch"] = str(upper)
        rooms_out = response["rooms"]
        empty = not (
            e2ee_news
            or rooms_out["join"]
            or rooms_out["invite"]
            or rooms_out["leave"]
            or rooms_out["knock"]
            or response["account_data"]["events"]
            or response["presence"]["events"]
        )
        if not empty and f.event_format != "federation":
            # unsigned.m.relations of the timelines' events, one batched lookup
            # (client-server API "Aggregations of child events").
            await self.rooms.relations.bundle_sync(rooms_out, p.requester)
        return response, empty, joined, upper

    @staticmethod
    def _stayed_joined(points: list[tuple[int, str]], since: int, upper: int) -> bool:
        """Was the user joined at ``since`` and at every membership change up to ``upper``?"""
        tl = MembershipTimeline(points, None)
        if tl.at(since) != "join":
            return False
        return all(m == "join" for s, m in points if since < s <= upper)
