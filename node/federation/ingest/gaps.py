"""Inbound PDUs: missing auth events and prev events (gap filling).

Spec: server-server API "Backfilling and retrieving missing events"
(``get_missing_events`` for unknown ``prev_events``), "Retrieving events" (``/state`` at
an event whose predecessors cannot be fetched), "Retrieving event authorisation
information" (``/event_auth`` for unknown ``auth_events``).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from federation.events.model import Event
from node.rooms.event_meta import meta
from node.rooms.state_cache import RoomState

from .. import store
from ..pdu_checks import (
    CREATE_KEY,
    Dropped,
    check_against_auth_events,
    check_against_state,
    check_format_signatures_hashes,
    state_keys_for_auth,
)
from ..policy import ServerPolicy
from ..remote_fetch import RemoteEvents
from ._common import MAX_STATE_FETCHES, SignedBy, _depth, _domain, log, state_events, state_map
from .persist import Persist

# Processes one PDU fetched to fill a gap (the receipt stage, which calls the gaps stage:
# handed in per call rather than held, so neither stage holds the other).
ProcessFetched = Callable[[str, RoomState, dict], Awaitable[None]]


class Gaps:
    """Fetching what an inbound event refers to but we lack: its auth events (stored as
    outliers by ``persist``) and its prev events (processed by the caller's
    ``process_fetched``, or stored with the state before them)."""

    def __init__(
        self,
        *,
        rooms: Any,
        state_store: Any,
        keyring: Any,
        remote: RemoteEvents,
        policy: ServerPolicy,
        is_signed_by: SignedBy,
        persist: Persist,
        max_missing: int,
    ) -> None:
        self.rooms = rooms  # node.rooms.RoomService: events, the persister
        self.db = rooms.db
        self.state_store = state_store
        self.keyring = keyring
        self.remote = remote
        self.policy = policy
        self.is_signed_by = is_signed_by
        self.persist = persist
        self.max_missing = max_missing  # events asked of get_missing_events per gap

    # ======================================================================================
    # missing auth events and prev events
    # ======================================================================================
    async def auth_events(self, origin: str, room: RoomState, ev: Event) -> dict[str, Event]:
        ids = [i for i in ev.auth_event_ids if isinstance(i, str)]
        # Usually the auth events are the room's current state for the selected keys.
        have: dict[str, Event] = {}
        for key in state_keys_for_auth(ev):
            current = room.state.get(key)
            if current is not None and current.event_id in ids:
                have[current.event_id] = current
        rest = [i for i in ids if i not in have]
        if rest:
            have.update(await self.rooms.get_events(rest))
        if len(have) < len(set(ids)):
            chain = await self.remote.event_auth(origin, room.room_id, ev.event_id)
            if chain:
                await self.persist.persist_outlier_and_state(
                    room.room_version, [], chain, origin, room_id=room.room_id
                )
                have = await self.rooms.get_events(ids)
        return have

    async def _prevs_without_state(self, prevs: Sequence[str]) -> list[str]:
        known = self.state_store.known_groups(prevs)
        rest = [p for p in prevs if p not in known]
        if not rest:
            return []
        status = await self.db.run(store.event_status, rest)
        return [p for p in rest if p not in status or (status[p][0] and not status[p][2])]

    async def fill_prev_gaps(
        self, origin: str, room: RoomState, ev: Event, process_fetched: ProcessFetched
    ) -> None:
        """Make the state after each of ``ev``'s prev events known: first by fetching the
        missing events (``get_missing_events``, each given to ``process_fetched``), then,
        for prev events still without state, by fetching them with their state."""
        missing = await self._prevs_without_state(ev.prev_event_ids)
        if not missing:
            return
        if self.max_missing > 0:
            min_depth = await self.db.run(store.min_depth_with_state, room.room_id)
            pdus = await self.remote.get_missing_events(
                origin,
                room.room_id,
                list(room.extremities),
                [ev.event_id],
                self.max_missing,
                min_depth,
            )
            pdus = [p for p in pdus if p.get("room_id") == room.room_id]
            pdus.sort(key=_depth)
            for pdu in pdus:
                try:
                    if Event(pdu, room.room_version).event_id == ev.event_id:
                        continue
                    await process_fetched(origin, room, pdu)
                except Exception:  # noqa: BLE001 - best effort: the event may still pass
                    log.exception("event=missing_event_failed room=%s", room.room_id)
            missing = await self._prevs_without_state(ev.prev_event_ids)
        for prev_id in missing[:MAX_STATE_FETCHES]:
            try:
                await self._fetch_with_state(origin, room, prev_id)
            except Exception:  # noqa: BLE001 - best effort, logged: the event may still pass
                log.exception("event=state_fetch_failed room=%s event_id=%s", room.room_id, prev_id)

    async def _fetch_with_state(self, origin: str, room: RoomState, event_id: str) -> None:
        """An event whose own predecessors we cannot get: fetch it and the state before
        it (``/state``), store that state as outliers and the event with it."""
        pdu = await self.remote.event(origin, event_id)
        if pdu is None:
            return
        sender_server = _domain(pdu.get("sender"))
        if sender_server is not None and not self.policy.allow_inbound(sender_server):
            log.info(
                "event=gap_event_dropped event_id=%s reason=server_policy sender=%s",
                event_id,
                sender_server,
            )
            return
        try:
            ev = await check_format_signatures_hashes(pdu, room.room_version, self.keyring)
        except Dropped as exc:
            log.info("event=gap_event_dropped event_id=%s reason=%s", event_id, exc.reason)
            return
        if ev.event_id != event_id or ev.room_id != room.room_id:
            return
        got = await self.remote.state(origin, room.room_id, event_id)
        if got is None:
            return
        state_pdus, chain = got
        pool = await self.persist.persist_outlier_and_state(
            room.room_version, state_pdus, chain, origin, room_id=room.room_id
        )
        state_ids = state_map(room.room_version, state_pdus, pool)
        auth_map = await self.auth_events(origin, room, ev)
        rejected = check_against_auth_events(
            ev, auth_map, room.state.get(CREATE_KEY), self.is_signed_by
        )
        status = (await self.db.run(store.event_status, [event_id])).get(event_id)
        async with room.lock:
            before = await self.state_store.new_group_async(room.room_id, None, state_ids)
            new = [before]
            if rejected is None:
                before_state = await state_events(self.rooms, state_ids, state_keys_for_auth(ev))
                reason = check_against_state(ev, before_state, self.is_signed_by)
                if reason is not None:
                    rejected = f"state before the event: {reason}"
            after = before
            if rejected is None and ev.is_state:
                after = await self.state_store.new_group_async(
                    room.room_id, before.id, {ev.key: ev.event_id}, event_id=ev.event_id
                )
                new.append(after)
            ev.rejected_reason = rejected
            meta(ev).sg = (before.id, after.id)
            meta(ev).sg_new = new
            self.state_store.set_event_groups(ev.event_id, before.id, after.id)
            if status is not None:
                meta(ev).replaces_outlier = True
            # Part of the DAG behind our extremities: neither current state nor extremities
            # change (the event that references it merges its state in).
            d = self.rooms.commit_received(
                room, ev, state_delta={}, extremities=list(room.extremities)
            )
        self.rooms.persister.flush()  # maybe under a transaction's hold
        await d
