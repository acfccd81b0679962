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
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from twisted.internet import defer

from federation.auth.power_levels import get_power_levels_content, user_power_level
from federation.events.model import Event
from node.filtering import Filter, project_fields
from node.push.service import PushService
from node.rooms.event_meta import meta
from node.rooms.visibility import Timeline as MembershipTimeline
from node.stream_tokens import StreamToken, events_token

from . import queries
from .push_counts import PushUnread
from .room_state import MEMBER, RoomStateReader, Timeline, has_name, stream_of, summary
from .unread import COUNTED_TYPES, SCAN_LIMIT, UnreadCache, count_unread

if TYPE_CHECKING:
    from node.e2ee.service import E2eeService

    from .presence import PresenceManager

log = logging.getLogger("parta.sync")

_MEMBERSHIP_CACHE = 20_000
_LL_CACHE = 5_000


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


@dataclass
class SyncParams:
    requester: Any  # node.http.request.Requester
    filter: Filter
    since: StreamToken | None = None
    full_state: bool = False
    timeout_ms: int = 0

    @property
    def user_id(self) -> str:
        return self.requester.user_id


@dataclass
class _Run:
    """State of one computation."""

    p: SyncParams
    since: StreamToken | None
    upper: StreamToken
    full: bool
    ad_rooms: dict[str, list[dict]] = field(default_factory=dict)
    receipts: dict[str, dict] = field(default_factory=dict)
    read_pos: dict[str, int] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.p.requester.user_id

    @property
    def filter(self) -> Filter:
        return self.p.filter


class _Row:
    """An events row viewed as much like an ``Event`` as unread counting needs."""

    __slots__ = ("type", "sender", "state_key", "content", "stream")

    def __init__(self, row: Any) -> None:
        self.stream, self.type, self.sender, self.state_key = row[0], row[1], row[2], row[3]
        content = orjson.loads(row[4]).get("content") if not row[5] else {}
        self.content = content if isinstance(content, dict) else {}


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
        self.push_unread: PushUnread | None = None  # counts from node/push
        self.e2ee: E2eeService | None = None  # set by wiring (node/e2ee)
        self._memberships_cache: OrderedDict[str, tuple[int, dict]] = OrderedDict()
        self._ll_sent: OrderedDict[tuple[str, str | None], dict[str, set[str]]] = OrderedDict()
        self._start_lock = defer.DeferredLock()
        self._loaded = False
        # Positions at start-up: in-memory positions say nothing about older tokens.
        self._start = StreamToken()

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

        run = _Run(p=p, since=since, upper=upper, full=full)
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
            join_out[room_id] = await self._full_joined(
                run, room_id, lower, visibility.get(room_id)
            )
        for room_id in sorted(inc_rooms):
            entry = await self._incremental_joined(run, room_id)
            if entry is not None:
                join_out[room_id] = entry

        # Invites, knocks and leaves.
        if full:
            listed = {r: v for r, v in memberships.items() if f.room_allowed(r)}
        else:
            listed = {r: v for r, v in changes.items() if f.room_allowed(r)}
        for room_id, (membership, ev) in listed.items():
            if membership == "invite":
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
                response["rooms"]["leave"][room_id] = await self._left(run, room_id, ev, lower)

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

    # --- joined rooms ---------------------------------------------------------------------
    def _allow_timeline(self, run: _Run, room_id: str):
        tf = run.filter.room.timeline
        if tf.is_pass_all:
            return lambda ev: True
        return lambda ev: tf.allows(ev.type, ev.sender, ev.content, room_id)

    async def _full_joined(
        self, run: _Run, room_id: str, lower: int | None, vis: tuple | None
    ) -> dict:
        user_id = run.user_id
        if vis is None:
            vis = await self.rooms.visibility_timelines(room_id, user_id)
        tl = await self.state.fetch_timeline(
            room_id,
            user_id,
            lower,
            run.upper.events,
            run.filter.timeline_limit,
            self._allow_timeline(run, room_id),
            vis,
        )
        start = tl.prev_pos if (tl.events or tl.limited) else run.upper.events
        current = await self.state.current_state(room_id)
        summ = summary(current, user_id)
        if run.filter.lazy_load_members:
            wanted = {ev.sender for ev in tl.events} | {user_id} | set(summ["m.heroes"])
            at_start = await self.state.state_at_timeline_start(room_id, tl, start)
            state_evs = [ev for k, ev in at_start.items() if k[0] != MEMBER or k[1] in wanted]
            self._ll_reset_room(
                run, room_id, [ev for ev in state_evs + tl.events if ev.type == MEMBER]
            )
        else:
            state_evs = list(
                (await self.state.state_at_timeline_start(room_id, tl, start)).values()
            )
        state_evs.sort(key=lambda e: stream_of(e) or 0)
        entry = self._joined_entry(run, room_id, tl, state_evs, current, summ, typing_always=True)
        await self._add_unread(run, room_id, entry, tl, current)
        return entry

    async def _incremental_joined(self, run: _Run, room_id: str) -> dict | None:
        user_id = run.user_id
        since = run.since
        assert since is not None
        lower = since.events
        if self.notifier.room_events.get(room_id, 0) > lower:
            tl = await self.state.fetch_timeline(
                room_id,
                user_id,
                lower,
                run.upper.events,
                run.filter.timeline_limit,
                self._allow_timeline(run, room_id),
                None,
            )
        else:
            tl = Timeline(prev_pos=run.upper.events, raw_covers_from=lower)
        state_evs: list[Event] = []
        if tl.limited:
            # The gap's state changes (its member events are never "redundant").
            state_evs = await self.state.state_delta(room_id, lower, tl.prev_pos)
        if run.filter.lazy_load_members and tl.events:
            delivered = [ev for ev in state_evs + tl.events if ev.type == MEMBER]
            have = {ev.state_key for ev in delivered}
            senders = {ev.sender for ev in tl.events} - have
            if senders:
                members = await self.state.state_at(
                    room_id, tl.prev_pos, [(MEMBER, s) for s in senders]
                )
                state_evs.extend(self._ll_not_sent(run, room_id, members.values()))
            self._ll_room(run, room_id).update(ev.event_id for ev in delivered)
        current = None
        summ = None
        if any(ev.type == MEMBER for ev in tl.events) or any(ev.type == MEMBER for ev in state_evs):
            current = await self.state.current_state(room_id)
            summ = summary(current, user_id)
        entry = self._joined_entry(run, room_id, tl, state_evs, current, summ, typing_always=False)
        has_content = bool(
            entry["timeline"]["events"]
            or entry["state"]["events"]
            or entry["ephemeral"]["events"]
            or entry["account_data"]["events"]
        )
        counts_changed = await self._add_unread(run, room_id, entry, tl, current)
        if not has_content and not counts_changed:
            return None
        return entry

    def _joined_entry(
        self,
        run: _Run,
        room_id: str,
        tl: Timeline,
        state_evs: list[Event],
        current: dict | None,
        summ: dict | None,
        *,
        typing_always: bool,
    ) -> dict:
        f = run.filter
        sf = f.room.state
        state_out = [
            self._format(run, ev)
            for ev in state_evs
            if sf.is_pass_all or sf.allows(ev.type, ev.sender, ev.content, room_id)
        ]
        entry: dict = {
            "timeline": {
                "events": [self._format(run, ev) for ev in tl.events],
                "limited": tl.limited,
                "prev_batch": events_token(tl.prev_pos),
            },
            "state": {"events": state_out},
            "ephemeral": {"events": self._ephemeral(run, room_id, typing_always)},
            "account_data": {
                "events": [
                    e
                    for e in run.ad_rooms.get(room_id, ())
                    if f.room.account_data.allows(e["type"], None, None, room_id)
                ]
            },
        }
        if summ is not None:
            if current is not None and has_name(current) and not run.full:
                summ = {k: v for k, v in summ.items() if k != "m.heroes"}
            entry["summary"] = summ
        return entry

    def _ephemeral(self, run: _Run, room_id: str, typing_always: bool) -> list[dict]:
        ef = run.filter.room.ephemeral
        out = []
        since_typing = run.since.typing if run.since is not None else 0
        if typing_always:
            if self.typing.typing_users(room_id):
                out.append(self.typing.typing_event(room_id))
        elif self.typing.room_serial(room_id) > since_typing:
            out.append(self.typing.typing_event(room_id))
        receipt = run.receipts.get(room_id)
        if receipt is not None:
            out.append(receipt)
        if ef.is_pass_all:
            return out
        return [e for e in out if ef.allows(e["type"], None, None, room_id)]

    # --- left rooms -----------------------------------------------------------------------
    async def _left(self, run: _Run, room_id: str, leave_ev: Event, lower: int | None) -> dict:
        user_id = run.user_id
        leave_pos = stream_of(leave_ev) or run.upper.events
        vis = await self.rooms.visibility_timelines(room_id, user_id)
        tl = await self.state.fetch_timeline(
            room_id,
            user_id,
            lower,
            leave_pos,
            run.filter.timeline_limit,
            self._allow_timeline(run, room_id),
            vis,
        )
        if lower is None:
            start = tl.prev_pos if (tl.events or tl.limited) else leave_pos
            # The state at the start of the timeline (which ends at the leave), from the
            # state store: a remote room's state from send_join is stored as outliers,
            # after an invite that may open the timeline.
            state_evs = list(
                (await self.state.state_at_timeline_start(room_id, tl, start)).values()
            )
            if run.filter.lazy_load_members:
                wanted = {ev.sender for ev in tl.events} | {user_id}
                state_evs = [ev for ev in state_evs if ev.type != MEMBER or ev.state_key in wanted]
        elif tl.limited:
            state_evs = await self.state.state_delta(room_id, lower, tl.prev_pos)
        else:
            state_evs = []
        state_evs.sort(key=lambda e: stream_of(e) or 0)
        sf = run.filter.room.state
        return {
            "timeline": {
                "events": [self._format(run, ev) for ev in tl.events],
                "limited": tl.limited,
                "prev_batch": events_token(tl.prev_pos),
            },
            "state": {
                "events": [
                    self._format(run, ev)
                    for ev in state_evs
                    if sf.allows(ev.type, ev.sender, ev.content, room_id)
                ]
            },
            "account_data": {
                "events": [
                    e
                    for e in run.ad_rooms.get(room_id, ())
                    if run.filter.room.account_data.allows(e["type"], None, None, room_id)
                ]
            },
        }

    # --- formatting -----------------------------------------------------------------------
    def _format(self, run: _Run, ev: Event) -> dict:
        f = run.filter
        if f.event_format == "federation":
            out = dict(ev.pdu)
        else:
            out = self.rooms.format_client_event(
                ev, include_room_id=False, requester=run.p.requester
            )
        if f.event_fields is not None:
            out = project_fields(out, f.event_fields)
        return out

    # --- lazy-loading redundancy ----------------------------------------------------------
    def _ll_room(self, run: _Run, room_id: str) -> set[str]:
        key = (run.user_id, getattr(run.p.requester, "device_id", None))
        rooms = self._ll_sent.get(key)
        if rooms is None:
            rooms = self._ll_sent[key] = {}
            if len(self._ll_sent) > _LL_CACHE:
                self._ll_sent.popitem(last=False)
        else:
            self._ll_sent.move_to_end(key)
        sent = rooms.get(room_id)
        if sent is None or len(sent) > 2000:
            sent = rooms[room_id] = set()
        return sent

    def _ll_reset_room(self, run: _Run, room_id: str, members: list[Event]) -> None:
        """A full-state answer: the client now knows exactly the members sent here."""
        sent = self._ll_room(run, room_id)
        sent.clear()
        sent.update(ev.event_id for ev in members)

    def _ll_not_sent(self, run: _Run, room_id: str, members: Any) -> list[Event]:
        sent = self._ll_room(run, room_id)
        out = []
        for ev in members:
            if run.filter.include_redundant_members or ev.event_id not in sent:
                out.append(ev)
                sent.add(ev.event_id)
        return out

    # --- unread notification counts -------------------------------------------------------
    async def _add_unread(
        self, run: _Run, room_id: str, entry: dict, tl: Timeline, current: dict | None
    ) -> bool:
        """Set ``unread_notifications``; True when the counts differ from the last answer."""
        if self.push_unread is not None:  # the push area's per-user rules decide (node/push)
            threaded = run.filter.room.timeline.unread_thread_notifications
            return await self.push_unread.add(run.user_id, room_id, entry, threaded)
        user_id = run.user_id
        upper = run.upper.events
        read_pos = run.read_pos.get(room_id, 0)
        before = self.unread.get(user_id, room_id, read_pos)
        if before is not None and before[0] >= upper:
            notif, highlight = before[1], before[2]
        else:
            start_pos, base = (before[0], (before[1], before[2])) if before else (read_pos, (0, 0))
            if tl.raw_covers_from is not None and tl.raw_covers_from <= start_pos:
                evs: list = [
                    ev
                    for ev in reversed(tl.raw)
                    if (stream_of(ev) or 0) > start_pos and meta(ev).redacted_by is None
                ]
            else:
                rows = await self.db.run(
                    queries.notifiable_events_query,
                    room_id,
                    user_id,
                    start_pos,
                    upper,
                    sorted(COUNTED_TYPES),
                    SCAN_LIMIT,
                )
                evs = [_Row(r) for r in rows if not r[5]]
            if evs:
                if current is None:
                    current = await self.state.current_state(room_id)
                notif, highlight = count_unread(
                    evs, user_id, self._room_notifier_check(current), base
                )
            else:
                notif, highlight = base
            self.unread.put(user_id, room_id, read_pos, upper, notif, highlight)
        entry["unread_notifications"] = {"notification_count": notif, "highlight_count": highlight}
        if before is None:
            # Unknown before (first answer since start-up): report when events moved.
            return self.notifier.room_events.get(room_id, 0) > (
                run.since.events if run.since else 0
            )
        return (before[1], before[2]) != (notif, highlight)

    @staticmethod
    def _room_notifier_check(state: dict):
        """``sender_notification_permission`` for the ``room`` key (default level 50)."""

        def check(sender: str) -> bool:
            create = state.get(("m.room.create", ""))
            if create is None:
                return False
            pl = get_power_levels_content(state)
            notifications = pl.get("notifications")
            level = notifications.get("room", 50) if isinstance(notifications, dict) else 50
            if not isinstance(level, int) or isinstance(level, bool):
                level = 50
            return user_power_level(sender, state, create.room_version) >= level

        return check
