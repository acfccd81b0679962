"""``RoomService``: event creation, persistence and the room queries other areas use
(the per-user queries are in ``user_queries.UserQueries``; building and authorising an
event in ``event_build``, transaction IDs in ``txn_ids``, redactions in ``redaction_ops``).

Spec: server-server API "PDUs" (prev_events = forward extremities, depth, auth events
selection), the room versions' "Authorisation rules" (every event we create is checked
against the current state before it is persisted), client-server API "Room Events",
"Transaction identifiers" (idempotent sends per device and txn ID), "Redactions".

Hot path (``send_event``): the room's state and forward extremities are held in memory
(``RoomState``, loaded once); under the room's lock the event is built, signed,
auth-checked and applied to the in-memory state, then queued with the batching
``EventPersister``; the lock is released before the commit is awaited, so concurrent
senders in one room share DB transactions.  Transaction IDs are remembered in memory
(preloaded from the last hour on first use, ``txn_ids.py``), so a send does no DB read.

Public API (used by sync and the other areas; keep these names):
  create_room, send_event, redact_event, update_membership, joined_room_ids,
  get_current_state, get_event, rooms_shared_with, get_events_in_range,
  current_stream_ordering, user_memberships_changed, format_client_event,
  get_rooms_for_user, get_state_at, stripped_state, filter_events_for_user,
  forgotten_room_ids, room_exists, get_room_version.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, Iterable, Sequence

from twisted.internet import defer

from federation.errors import Forbidden, InvalidParam, MatrixError, NotFound
from federation.events.model import Event
from federation.room_versions import RoomVersion, get_room_version

from . import store
from .client_format import format_client_event
from .erasure import ErasedSenders
from .event_build import build_and_check
from .event_meta import committed_stream, meta
from .hooks import RoomHooks
from .ignored import IgnoredUsers
from .persister import EventPersister, is_hidden
from .redaction_ops import redact_event
from .relations import Relations
from .state_cache import RoomState
from .state_store import StateStore
from .txn_ids import TxnIds
from .user_queries import UserQueries

log = logging.getLogger("parta.rooms")

# Transaction IDs remembered in memory (and preloaded after a restart): retransmissions
# come within seconds or minutes; bounded in time and count for memory.
TXN_KEEP_MS = 3600 * 1000
TXN_MAX = 20000
EVENT_CACHE_SIZE = 2000  # recent events (redaction targets, /event); bounded for RSS


class RoomService(UserQueries):
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        server_name: str,
        signing_key: Any,
        accounts: Any = None,
        notifier: Any = None,
        default_room_version: str = "12",
    ) -> None:
        self.db = db
        self.clock = clock
        self.server_name = server_name
        self.signing_key = signing_key
        self.accounts = accounts
        self.notifier = notifier
        self.default_room_version = default_room_version
        self.persister = EventPersister(db, notifier, clock=clock)
        # The state before/after every event (node.rooms.state_store): local sends
        # reuse the room's current group (messages) or add a one-entry delta (state).
        self.state_store = StateStore(db)
        self.state_store.attach(self.persister)
        self.persister.on_persisted.append(self._after_persist)
        self.persister.on_failed.append(self._after_failure)
        # Bundled aggregations (unsigned.m.relations) and their cache (node/rooms/relations.py).
        self.relations = Relations(self)
        self.persister.on_committed.append(self.relations.on_committed)
        self._rooms: dict[str, RoomState] = {}
        self._room_loads: dict[str, list[defer.Deferred]] = {}
        self._events: OrderedDict[str, Event] = OrderedDict()
        self._joined: dict[str, set[str]] = {}
        self._membership_gen = 0
        self._vis_gen = 0
        self._mem_timelines: OrderedDict[tuple[str, str], list] = OrderedDict()
        self._hv_timelines: dict[str, list] = {}
        self.txn_ids = TxnIds(db, clock, keep_ms=TXN_KEEP_MS, max_entries=TXN_MAX)
        # Filled once by the composition root when the node federates (node/rooms/hooks.py).
        self.hooks = RoomHooks()
        # Erased users, whose events later joiners see redacted (node/rooms/erasure.py).
        self.erasure = ErasedSenders(db)
        # Who each user ignores (node/rooms/ignored.py): kept from them on every read path.
        self.ignored = IgnoredUsers(db)

    def attach_federation(self, hooks: RoomHooks) -> None:
        """Hand the rooms area the federation's implementations of its hooks (joins of
        remote rooms, backfill, remote space children...); called once at wiring."""
        self.hooks = hooks

    # ==================================================================================
    # Rooms in memory
    # ==================================================================================
    async def get_room(self, room_id: str) -> RoomState:
        """The cached ``RoomState`` (loaded on first use); 404 M_NOT_FOUND when unknown."""
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        waiters = self._room_loads.get(room_id)
        if waiters is not None:
            d: defer.Deferred = defer.Deferred()
            waiters.append(d)
            return await d
        self._room_loads[room_id] = waiters = []
        try:
            data = (
                await self.db.run(store.load_room, room_id) if _plausible_room_id(room_id) else None
            )
            if data is None:
                raise NotFound("Unknown room")
            room = self._room_from_data(room_id, data)
            self._rooms[room_id] = room
        except Exception as exc:
            for d in waiters:
                d.errback(exc)
            raise
        finally:
            self._room_loads.pop(room_id, None)
        for d in waiters:
            d.callback(room)
        return room

    def _room_from_data(self, room_id: str, data: dict) -> RoomState:
        row = data["row"]
        room = RoomState(
            room_id,
            get_room_version(row["room_version"]),
            creator=row["creator"],
            is_public=bool(row["is_public"]),
            room_type=row["room_type"],
        )
        for ev in data["state"]:
            room.set_state_event(ev)
        room.extremities = list(data["extremities"])
        room.depth = data["depth"]
        group = data.get("state_group")
        if group is not None:
            room.state_group = group[0]
            self.state_store.note_group(group[0], group[1])
        return room

    async def room_for_sender(self, room_id: str) -> RoomState:
        """The room someone wants to send into: an unknown room is 403 "not in the room"
        (as for any room the sender is not in), not 404."""
        try:
            return await self.get_room(room_id)
        except NotFound:
            raise Forbidden("You are not in this room") from None

    async def room_exists(self, room_id: str) -> bool:
        try:
            await self.get_room(room_id)
        except NotFound:
            return False
        return True

    async def get_room_version(self, room_id: str) -> RoomVersion:
        return (await self.get_room(room_id)).room_version

    async def get_current_state(self, room_id: str) -> dict[tuple[str, str], Event]:
        """A copy of the room's current state map (type, state_key) -> Event."""
        return dict((await self.get_room(room_id)).state)

    # ==================================================================================
    # Event creation
    # ==================================================================================
    def build_and_check(
        self,
        room: RoomState,
        sender: str,
        etype: str,
        content: dict,
        state_key: str | None = None,
        redacts: str | None = None,
    ) -> Event:
        """Build the signed PDU on top of ``room`` and run the auth rules (no side effects;
        ``event_build.py``).

        Raises ``AuthError`` (403 M_FORBIDDEN, with the failing rule) when not allowed.
        """
        return build_and_check(
            room,
            server_name=self.server_name,
            signing_key=self.signing_key,
            now_ms=self.clock.time_ms(),
            sender=sender,
            etype=etype,
            content=content,
            state_key=state_key,
            redacts=redacts,
        )

    def apply_local(self, room: RoomState, ev: Event) -> None:
        """Advance the in-memory room past an event created here (state groups, current
        state, forward extremities); the caller queues it for persistence.  An event that
        could not be stored is refused first (400), leaving the room untouched."""
        self.persister.check(ev)
        self.state_store.assign_local(room, ev)
        room.apply(ev)
        meta(ev).extremities_after = tuple(room.extremities)

    def commit_local(self, room: RoomState, ev: Event) -> defer.Deferred:
        """Apply a checked event to the in-memory room and queue it for persistence (the
        caller holds ``room.lock``); fires once it is written."""
        self.apply_local(room, ev)
        return self.enqueue_applied(ev)

    def enqueue_applied(self, ev: Event) -> defer.Deferred:
        """Queue an event for persistence whose effect on the room in memory is already
        applied, or that has none (outliers, backfilled history).  It is cached first, so
        reads see it before the write lands; fires once it is written."""
        self._cache_event(ev)
        return self.persister.enqueue(ev)

    def commit_received(
        self,
        room: RoomState,
        ev: Event,
        *,
        state_delta: dict[tuple[str, str], Event | None] | None = None,
        extremities: Sequence[str] | None = None,
        state_group: int | None = None,
    ) -> defer.Deferred:
        """Queue an event received over federation (caller holds ``room.lock``; the state
        groups are already in ``meta(ev)``).

        ``state_delta``: how the room's current state changes (after state resolution);
        ``extremities``: the new forward extremities; ``state_group``: the group of the new
        current state.  Hidden events (outliers, soft-failed, rejected) pass None for all
        three and change nothing in memory but the depth.
        """
        try:
            self.persister.check(ev)  # unstorable: refused before it changes the room
        except MatrixError:
            self.state_store._failed([ev])  # the groups made for it are not written
            raise
        if state_delta:
            for key, new in state_delta.items():
                if new is None:
                    room.remove_state(key)
                else:
                    room.set_state_event(new)
            meta(ev).current_state_delta = dict(state_delta)
        elif state_delta is not None:
            meta(ev).current_state_delta = {}
        if extremities is not None:
            room.extremities = list(extremities)
            meta(ev).extremities_after = tuple(room.extremities)
        if state_group is not None and state_group != room.state_group:
            room.state_group = state_group
            meta(ev).sg_current = (room.room_id, state_group)
        if ev.depth > room.depth and extremities is not None:
            room.depth = ev.depth
        return self.enqueue_applied(ev)

    def invalidate_history(self, room_id: str) -> None:
        """Older events were added below the room's history (backfill): the cached
        visibility timelines of the room are stale."""
        self._vis_gen += 1
        self._hv_timelines.pop(room_id, None)
        for key in [k for k in self._mem_timelines if k[0] == room_id]:
            del self._mem_timelines[key]

    def add_room(self, room: RoomState) -> None:
        """Register a room built elsewhere (a room created here, joined over federation,
        or known only from an out-of-band membership)."""
        self._rooms[room.room_id] = room

    def loaded_room(self, room_id: str) -> RoomState | None:
        """The room if it is in memory, without reading the database (``get_room`` loads
        it): a room being set up and not yet stored is found only this way."""
        return self._rooms.get(room_id)

    def forget_room(self, room_id: str) -> None:
        """Drop the room from memory, e.g. one set up for an event that failed to store;
        the next ``get_room`` reads what the database holds."""
        self._rooms.pop(room_id, None)

    async def create_event(
        self,
        room_id: str,
        sender: str,
        etype: str,
        content: dict,
        *,
        state_key: str | None = None,
        redacts: str | None = None,
        txn: tuple[str, str] | None = None,
        precheck: Callable[[RoomState], bool] | None = None,
    ) -> Event | None:
        """Create, authorise and persist one event; None when ``precheck`` says no-op."""
        room = await self.room_for_sender(room_id)
        async with room.lock:
            if precheck is not None and not precheck(room):
                return None
            ev = self.build_and_check(room, sender, etype, content, state_key, redacts)
            if txn is not None:
                meta(ev).txn = txn
            if redacts is not None:
                meta(ev).redacts_target = redacts
            d = self.commit_local(room, ev)
        await d
        return ev

    async def send_event(
        self,
        user_id: str,
        room_id: str,
        etype: str,
        content: dict,
        state_key: str | None = None,
        txn: tuple[str | None, str] | None = None,
    ) -> str:
        """Send a message (or, with ``state_key``, a state) event; returns its event ID.

        ``txn`` is ``(device_id, txn_id)``: a repeated transaction returns the first event
        ID without sending again.  Membership and redaction events go through their own
        paths (``update_membership``, ``redact_event``).
        """
        if not isinstance(content, dict):
            raise MatrixError("Content must be a JSON object", errcode="M_BAD_JSON")
        if txn is None:
            return (await self._dispatch(user_id, room_id, etype, content, state_key)).event_id
        device_id, txn_id = txn
        # "the same transaction ID ... and the path of the HTTP request is the same": the
        # room is part of the path, so it is part of the key (``txn_ids.py``).
        key = (user_id, device_id or "", txn_id, room_id)

        async def send() -> str:
            ev = await self._dispatch(
                user_id, room_id, etype, content, state_key, txn=(key[1], txn_id)
            )
            return ev.event_id

        return await self.txn_ids.once(key, send)

    async def _dispatch(
        self,
        user_id: str,
        room_id: str,
        etype: str,
        content: dict,
        state_key: str | None,
        txn: tuple[str, str] | None = None,
    ) -> Event:
        if etype == "m.room.redaction" and state_key is None:
            redacts = content.get("redacts")
            if not isinstance(redacts, str):
                raise MatrixError("m.room.redaction needs content.redacts", errcode="M_BAD_JSON")
            body = {k: v for k, v in content.items() if k != "redacts"}
            return await self.redact_event(user_id, room_id, redacts, body, txn=txn)
        if etype == "m.room.member" and state_key is not None:
            from .membership_ops import set_member_state

            ev = await set_member_state(self, user_id, room_id, state_key, content)
            if ev is None:  # no-op change: answer with the current member event
                room = await self.get_room(room_id)
                return room.state[("m.room.member", state_key)]
            return ev
        if etype == "m.room.canonical_alias" and state_key == "":
            from .aliases_ops import check_canonical_alias_content

            await check_canonical_alias_content(self, room_id, content)
        ev = await self.create_event(room_id, user_id, etype, content, state_key=state_key, txn=txn)
        assert ev is not None
        return ev

    async def redact_event(
        self,
        user_id: str,
        room_id: str,
        target_id: str,
        content: dict | None = None,
        txn: tuple[str, str] | None = None,
    ) -> Event:
        """Send ``m.room.redaction`` for ``target_id`` (client-server API "Redactions",
        ``redaction_ops.py``)."""
        return await redact_event(self, user_id, room_id, target_id, content, txn)

    # ==================================================================================
    # Persistence hooks (reactor thread, after a batch committed / failed)
    # ==================================================================================
    def _after_persist(self, evs: Sequence[Event]) -> None:
        for ev in evs:
            if ev.type == "m.room.history_visibility" and ev.state_key == "":
                self._vis_gen += 1
                points = self._hv_timelines.get(ev.room_id)
                if points is not None:
                    value = ev.content.get("history_visibility")
                    points.append(
                        (
                            committed_stream(ev),
                            value if isinstance(value, str) else "shared",
                        )
                    )
            if ev.type == "m.room.member" and ev.is_state:
                self._membership_gen += 1
                self._vis_gen += 1
                member = ev.key[1]
                points = self._mem_timelines.get((ev.room_id, member))
                if points is not None:
                    points.append((committed_stream(ev), ev.content.get("membership", "")))
                joined = self._joined.get(member)
                if joined is not None:
                    if ev.content.get("membership") == "join":
                        joined.add(ev.room_id)
                    else:
                        joined.discard(ev.room_id)
            target = meta(ev).redacts_target
            if target is not None:
                self._apply_redaction(ev, target)

    def _apply_redaction(self, redaction: Event, target_id: str) -> None:
        cached = self._events.get(target_id)
        if cached is not None and cached.room_id == redaction.room_id:
            self._events[target_id] = red = store.redacted_copy(cached, redaction)
        else:
            self._events.pop(target_id, None)
            red = None
        room = self._rooms.get(redaction.room_id)
        if room is None:
            return
        for ev in room.state.values():
            if ev.event_id == target_id:
                room.set_state_event(red or store.redacted_copy(ev, redaction))
                break

    def _after_failure(self, evs: Sequence[Event]) -> None:
        for ev in evs:
            if not is_hidden(ev) and not meta(ev).backfilled:
                # It was applied to the room in memory: reload from the database next
                # time (hidden events never change the room in memory).
                self._rooms.pop(ev.room_id, None)
            self._events.pop(ev.event_id, None)
            self._hv_timelines.pop(ev.room_id, None)

    # ==================================================================================
    # Events
    # ==================================================================================
    def _cache_event(self, ev: Event) -> None:
        self._events[ev.event_id] = ev
        if len(self._events) > EVENT_CACHE_SIZE:
            self._events.popitem(last=False)

    async def get_event(self, event_id: str) -> Event | None:
        """The event (redacted if it was redacted), or None when unknown."""
        ev = self._events.get(event_id)
        if ev is not None:
            return ev
        found = await self.db.run(store.fetch_events, [event_id])
        ev = found.get(event_id)
        if ev is not None:
            self._cache_event(ev)
        return ev

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        ids = list(event_ids)
        out = {i: self._events[i] for i in ids if i in self._events}
        missing = [i for i in ids if i not in out]
        if missing:
            found = await self.db.run(store.fetch_events, missing)
            for ev in found.values():
                self._cache_event(ev)
            out.update(found)
        return out

    def current_stream_ordering(self) -> int:
        """The highest committed stream ordering (the position sync tokens refer to)."""
        return self.persister.max_persisted

    async def get_events_in_range(
        self,
        room_id: str,
        from_stream: int | None,
        to_stream: int | None,
        limit: int,
        direction: str = "b",
    ) -> list[Event]:
        """Accepted events of a room between two stream positions (see ``store``):
        ``"b"``: to < stream <= from, newest first; ``"f"``: from < stream <= to, oldest
        first.  No visibility filtering (``filter_events_for_user`` does that)."""
        if direction not in ("b", "f"):
            raise InvalidParam("direction must be 'b' or 'f'")
        return await self.db.run(
            store.events_in_range, room_id, from_stream, to_stream, limit, direction
        )

    def format_client_event(
        self,
        event: Event,
        *,
        include_room_id: bool = True,
        user_id: str | None = None,
        device_id: str | None = None,
        requester: Any = None,
    ) -> dict:
        if requester is not None:
            user_id, device_id = requester.user_id, requester.device_id
        out = format_client_event(
            event,
            now_ms=self.clock.time_ms(),
            include_room_id=include_room_id,
            user_id=user_id,
            device_id=device_id,
        )
        if event.sender in self.erasure.erased:  # an erased sender (node/rooms/erasure.py)
            erased = self.erasure.served_content(event, user_id, self)
            if erased is not None:
                out["content"] = erased
        return out

    # --- delegated operations ------------------------------------------------------------
    async def create_room(self, user_id: str, body: dict) -> str:
        from .create_ops import create_room

        return await create_room(self, user_id, body)

    async def update_membership(
        self,
        sender: str,
        room_id: str,
        target: str,
        membership: str,
        reason: str | None = None,
        *,
        action: str | None = None,
        extra_content: dict | None = None,
    ) -> Event | None:
        """Change ``target``'s membership; returns the new member event, or None when the
        request changes nothing (e.g. inviting an already invited user)."""
        from .membership_ops import update_membership

        return await update_membership(
            self,
            sender,
            room_id,
            target,
            membership,
            reason,
            action=action,
            extra_content=extra_content,
        )

    async def on_profile_changed(self, user_id: str, profile: dict) -> None:
        from .membership_ops import propagate_profile

        await propagate_profile(self, user_id, profile)


def _plausible_room_id(room_id: str) -> bool:
    return isinstance(room_id, str) and room_id.startswith("!") and len(room_id) <= 255
