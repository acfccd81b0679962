"""Inbound PDUs: the checks on receipt, missing events, state, and persistence.

Spec: server-server API "Checks performed on receipt of a PDU" (steps 1-6, see
``pdu_checks``), "Rejection" (a rejected event is stored but neither shown to clients nor
used as a prev event, and the state is calculated as if it were not there), "Soft failure"
(passes the state before it, fails the current state: stored, takes part in state
resolution, not shown, not a forward extremity), "Backfilling and retrieving missing
events" (``get_missing_events`` for unknown ``prev_events``), "Retrieving events"
(``/state`` at an event whose predecessors cannot be fetched), "Retrieving event
authorisation information" (``/event_auth`` for unknown ``auth_events``), "Room State
Resolution" (forks are merged with the room version's algorithm).

``Ingest`` API (FED-CORE; FED-OUT calls the last two when joining a remote room):

* ``await receive_pdus(origin, pdus) -> {event_id: {} | {"error": str}}``;
* ``await persist_outlier_and_state(room_version, state_pdus, auth_chain_pdus, origin,
  room_id=None) -> {event_id: Event}``: checks (1-4) and stores events as outliers;
* ``await persist_joined_room(room_version, join_pdu, state_pdus, auth_chain_pdus, origin)
  -> room_id``: a ``send_join`` response: the state and auth chain as outliers, then the
  join event as the room's first (or newest) timeline event with that state before it;
* ``await persist_backfilled(origin, room_id, pdus) -> [Event]``: history from
  ``/backfill`` (checks 1-4), stored below every stream ordering of the room so
  ``/messages`` pages back into it; current state and extremities do not change.

Work per PDU, in spec order: policy (sender's server) -> 1-3 format, signatures, hashes ->
4 auth events (fetched with ``/event_auth`` when missing) -> missing prev events (fetched
before taking the room lock) -> under the room's lock: state before (the prev events'
states, resolved when they differ) -> 5 -> 6 -> new state groups, current state and
forward extremities -> queued with the rooms persister (same batches as local events).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from twisted.internet import defer

from federation.auth.power_levels import named_level, user_power_level
from federation.errors import Forbidden, MatrixError, NotFound
from federation.events.model import Event
from federation.room_versions import RoomVersion, get_room_version
from federation.state_res import StateResolutionError
from node.rooms.state_cache import RoomState

from . import fed_metrics, store
from .pdu_checks import (CREATE_KEY, Dropped, check_against_auth_events,
                         check_against_state, check_format_signatures_hashes,
                         signature_checker, state_keys_for_auth)
from .remote_fetch import RemoteEvents
from .state_resolution import StateResolver
from .state_store import GroupRecord, StateMap, diff_states

log = logging.getLogger("parta.federation.ingest")

MAX_STATE_FETCHES = 3          # prev events whose state we ask for, per PDU
_NONE = object()               # "looked up: not stored"


def _depth(pdu: Any) -> int:
    d = pdu.get("depth") if isinstance(pdu, dict) else None
    return d if isinstance(d, int) and not isinstance(d, bool) else 0


def _domain(user_id: Any) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return user_id.split(":", 1)[1]
    return None


class Ingest:
    def __init__(self, *, rooms: Any, state_store: Any, keyring: Any, client: Any,
                 policy: Any, server_name: str, max_missing_events: int = 20) -> None:
        self.rooms = rooms
        self.db = rooms.db
        self.state_store = state_store
        self.keyring = keyring
        self.remote = RemoteEvents(client)
        self.policy = policy
        self.server_name = server_name
        self.max_missing = max_missing_events
        self.resolver = StateResolver(rooms.get_events)
        self.is_signed_by = signature_checker(keyring)
        self.stats = {"accepted": 0, "rejected": 0, "soft_failed": 0, "dropped": 0}

    def _count(self, outcome: str) -> None:
        self.stats[outcome] += 1
        fed_metrics.pdu(outcome)

    # ======================================================================================
    # /send
    # ======================================================================================
    async def receive_pdus(self, origin: str, pdus: Sequence[Any]) -> dict[str, dict]:
        """Process a transaction's PDUs; per-PDU results keyed by event ID.  PDUs of rooms
        we are not in (their room version is unknown, so is their ID) get no entry."""
        by_room: dict[str, list[tuple[str, Event | None, str | None, int]]] = {}
        rooms: dict[str, RoomState] = {}
        for pdu in pdus:
            if not isinstance(pdu, dict) or not isinstance(pdu.get("room_id"), str):
                continue
            room_id = pdu["room_id"]
            room = rooms.get(room_id)
            if room is None:
                try:
                    room = rooms[room_id] = await self.rooms.get_room(room_id)
                except NotFound:
                    log.info("event=pdu_for_unknown_room origin=%s room=%s", origin, room_id)
                    continue
            try:
                ev, error = await self._check(origin, room, pdu), None
                event_id = ev.event_id
            except Dropped as exc:
                ev, error = None, exc.reason
                try:
                    event_id = Event(pdu, room.room_version).event_id
                except Exception:  # noqa: BLE001 - too malformed to even have an ID
                    log.info("event=pdu_without_id origin=%s room=%s", origin, room_id)
                    continue
            by_room.setdefault(room_id, []).append((event_id, ev, error, _depth(pdu)))
        results: dict[str, dict] = {}
        statuses = await self.db.run(store.event_status, [
            eid for items in by_room.values() for eid, ev, _, _ in items if ev is not None])
        pending: list[tuple[str, defer.Deferred]] = []
        for room_id, items in by_room.items():
            items.sort(key=lambda item: item[3])
            for event_id, ev, error, _depth_ in items:
                d = None
                if ev is not None:
                    try:
                        error, d = await self._process_checked(
                            origin, rooms[room_id], ev, fetch_missing=True,
                            status=statuses.get(event_id, _NONE))
                    except Exception:  # noqa: BLE001 - one PDU must not fail the rest
                        log.exception("event=pdu_failed origin=%s event_id=%s", origin,
                                      event_id)
                        error, d = "Internal error while processing the event", None
                results[event_id] = {} if error is None else {"error": error}
                if d is not None:
                    pending.append((event_id, d))
        # The transaction's events are written together (the persister batches them).
        for event_id, d in pending:
            try:
                await d
            except Exception:  # noqa: BLE001
                log.exception("event=pdu_persist_failed origin=%s event_id=%s", origin,
                              event_id)
                results[event_id] = {"error": "Internal error while storing the event"}
        return results

    async def process_pdu(self, origin: str, room: RoomState, pdu: dict, *,
                          fetch_missing: bool = True) -> str | None:
        """All checks for one PDU of a room we are in, and its persistence; None when it
        was accepted (or soft-failed, or already known), else why it was dropped or
        rejected."""
        try:
            ev = await self._check(origin, room, pdu)
        except Dropped as exc:
            return exc.reason
        outcome, d = await self._process_checked(origin, room, ev,
                                                 fetch_missing=fetch_missing)
        if d is not None:
            await d
        return outcome

    async def _check(self, origin: str, room: RoomState, pdu: dict) -> Event:
        """Policy and steps 1-3; ``Dropped`` when the PDU is not to be stored at all."""
        # The sender's server must be one we federate with (policy; the origin was
        # checked when the request was authenticated).
        sender_server = _domain(pdu.get("sender"))
        if sender_server is not None and not self.policy.allow_inbound(sender_server):
            self._count("dropped")
            raise Dropped(f"Events from {sender_server} are not accepted by this server")
        # 1.-3. format, signatures (sender's server, and others required), hashes
        try:
            ev = await check_format_signatures_hashes(pdu, room.room_version, self.keyring)
        except Dropped as exc:
            self._count("dropped")
            log.info("event=pdu_dropped origin=%s reason=%s", origin, exc.reason)
            raise
        if ev.room_id != room.room_id:
            self._count("dropped")
            raise Dropped("The event is not in the room it claims")
        return ev

    async def _process_checked(self, origin: str, room: RoomState, ev: Event, *,
                               fetch_missing: bool, status: Any = None
                               ) -> tuple[str | None, defer.Deferred | None]:
        """Steps 4-6 and persistence of a checked event, without waiting for the write:
        (outcome, Deferred of the write).  ``status``: the stored event's
        ``event_status`` when already looked up (``_NONE``: not stored), None to look it
        up here."""
        if self.state_store.known_groups([ev.event_id]):
            return None, None   # processed moments ago (the write may still be queued)
        if status is None:
            status = (await self.db.run(store.event_status, [ev.event_id])).get(ev.event_id)
        elif status is _NONE:
            status = None
        if status is not None and (status[2] or status[1] or not status[0]):
            return None, None   # already processed (or rejected before): nothing to do
        if ev.type == "m.room.create":
            self._count("dropped")
            return "A room's m.room.create event cannot be received into the room", None

        # 4. auth rules against the event's own auth events
        auth_map = await self._auth_events(origin, room, ev)
        rejected = check_against_auth_events(ev, auth_map, room.state.get(CREATE_KEY),
                                             self.is_signed_by)
        # Missing prev events: fetched before taking the room's lock.
        if fetch_missing:
            await self._fill_prev_gaps(origin, room, ev)
        async with room.lock:
            d, outcome = await self._commit(room, ev, rejected, auth_map,
                                            replaces_outlier=status is not None)
        return outcome, d

    # ======================================================================================
    # state before / after, under the room's lock
    # ======================================================================================
    async def _after_states(self, event_ids: Sequence[str]
                            ) -> list[tuple[int | None, StateMap]] | None:
        """(group, state after) of each event; None if one has no known state."""
        groups = await self.state_store.get_event_groups(event_ids)
        out: list[tuple[int | None, StateMap]] = []
        for eid in event_ids:
            g = groups.get(eid)
            if g is not None:
                out.append((g[1], await self.state_store.get_state(g[1])))
                continue
            try:      # events from before state groups: the linear history
                out.append((None, await self.state_store.get_state_ids_after(eid)))
            except NotFound:
                return None
        return out

    async def _merge(self, room: RoomState, states: list[tuple[int | None, StateMap]],
                     extra: Sequence[Event] = ()) -> tuple[int, StateMap, list[GroupRecord]]:
        """One group for the resolution of ``states`` (reusing a group when possible)."""
        by_group: dict[int, StateMap] = {}
        loose: list[StateMap] = []
        for g, m in states:
            if g is None:
                loose.append(m)
            else:
                by_group.setdefault(g, m)
        if len(by_group) == 1 and not loose:
            g, m = next(iter(by_group.items()))
            return g, m, []
        maps = list(by_group.values()) + loose
        resolved = await self.resolver.resolve(room.room_version, room.room_id, maps, extra)
        for g, m in by_group.items():
            if m == resolved:
                return g, resolved, []
        base = next(iter(by_group), None)
        if base is None:
            rec = await self.state_store.new_group_async(room.room_id, None, dict(resolved))
        else:
            rec = await self.state_store.new_group_async(
                room.room_id, base, diff_states(by_group[base], resolved))
        return rec.id, resolved, [rec]

    async def _state_events(self, ids: Mapping[tuple[str, str], str],
                            keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Event]:
        wanted = {k: ids[k] for k in keys if k in ids}
        evs = await self.rooms.get_events(wanted.values())
        return {k: evs[eid] for k, eid in wanted.items() if eid in evs}

    def _ensure_room_group(self, room: RoomState, ev: Event, new: list[GroupRecord]) -> None:
        if room.state_group is None:       # a room from before state groups
            rec = self.state_store.new_group(room.room_id, None,
                                             {k: e.event_id for k, e in room.state.items()})
            new.append(rec)
            room.state_group = rec.id
            ev.internal["sg_current"] = (room.room_id, rec.id)

    @staticmethod
    def _auth_state_is_current(room: RoomState, ev: Event, auth_map: Mapping[str, Event]
                               ) -> bool:
        """Do the event's auth events hold, for every key the auth rules may consult,
        exactly the room's current state?  Then step 5 on the current state would repeat
        step 4 (same rules, same events)."""
        listed = {e.key: e.event_id for eid in ev.auth_event_ids
                  if (e := auth_map.get(eid)) is not None and e.is_state}
        for key in state_keys_for_auth(ev):
            if key == CREATE_KEY:
                continue
            current = room.state.get(key)
            if (current.event_id if current is not None else None) != listed.get(key):
                return False
        return True

    async def _commit(self, room: RoomState, ev: Event, rejected: str | None,
                      auth_map: Mapping[str, Event] | None = None, *,
                      replaces_outlier: bool) -> tuple[defer.Deferred | None, str | None]:
        prevs = list(ev.prev_event_ids)
        new_groups: list[GroupRecord] = []
        self._ensure_room_group(room, ev, new_groups)
        # The common case: the event follows exactly our forward extremities, so the state
        # before it is the room's current state (already in memory).
        fast = bool(prevs) and set(prevs) == set(room.extremities)
        before_ids: StateMap | None = None
        if fast:
            before_group = room.state_group
            before_state: Mapping[tuple[str, str], Event] = room.state
        else:
            states = await self._after_states(prevs)
            if states is None or not prevs:
                return None, "The state before the event is unknown (missing prev_events)"
            try:
                before_group, before_ids, recs = await self._merge(room, states)
            except StateResolutionError as exc:
                return None, f"State resolution failed: {exc}"
            new_groups += recs
            before_state = await self._state_events(before_ids, state_keys_for_auth(ev))
        # 5. auth rules against the state before the event (the same check as step 4
        # when the auth events are the current state and that is the state before)
        if rejected is None and not (fast and auth_map is not None
                                     and self._auth_state_is_current(room, ev, auth_map)):
            reason = check_against_state(ev, before_state, self.is_signed_by)
            if reason is not None:
                rejected = f"state before the event: {reason}"
        after_group = before_group
        if rejected is None and ev.is_state:
            rec = await self.state_store.new_group_async(
                room.room_id, before_group, {ev.key: ev.event_id}, event_id=ev.event_id)
            new_groups.append(rec)
            after_group = rec.id
        # 6. auth rules against the current state: soft failure
        soft_failed = False
        if rejected is None and not fast:
            soft_failed = check_against_state(ev, room.state, self.is_signed_by) is not None
        assert before_group is not None and after_group is not None
        ev.rejected_reason = rejected
        ev.internal["sg"] = (before_group, after_group)
        self.state_store.set_event_groups(ev.event_id, before_group, after_group)
        if replaces_outlier:
            ev.internal["replaces_outlier"] = True
        if rejected is not None or soft_failed:
            if new_groups:
                ev.internal["sg_new"] = new_groups
            if soft_failed:
                ev.internal["outlier"] = True
                ev.internal["soft_failed"] = True
                self._count("soft_failed")
                log.info("event=pdu_soft_failed event_id=%s room=%s", ev.event_id,
                         room.room_id)
            else:
                self._count("rejected")
                log.info("event=pdu_rejected event_id=%s room=%s reason=%s", ev.event_id,
                         room.room_id, rejected)
            d = self.rooms.commit_received(room, ev)
            return d, (f"Event rejected: {rejected}" if rejected is not None else None)

        # Accepted: forward extremities, current state (resolved across the extremities).
        extremities = [e for e in room.extremities if e not in prevs] + [ev.event_id]
        current_ids = {k: e.event_id for k, e in room.state.items()} if not fast else None
        if fast:
            current_group = after_group
            delta: dict[tuple[str, str], Event | None] = {ev.key: ev} if ev.is_state else {}
        else:
            after_ids = dict(before_ids or {})
            if ev.is_state:
                after_ids[ev.key] = ev.event_id
            if extremities == [ev.event_id]:
                current_group, new_ids = after_group, after_ids
            else:
                others = await self._after_states(extremities[:-1])
                if others is None:
                    others = [(room.state_group, current_ids or {})]
                try:
                    current_group, new_ids, recs = await self._merge(
                        room, [(after_group, after_ids)] + others, extra=[ev])
                except StateResolutionError as exc:
                    log.warning("event=current_state_resolution_failed room=%s error=%s",
                                room.room_id, exc)
                    current_group, new_ids, recs = room.state_group, dict(current_ids or {}), []
                new_groups += recs
            changed = diff_states(current_ids or {}, new_ids)
            loaded = await self.rooms.get_events([v for v in changed.values()
                                                  if v is not None and v != ev.event_id])
            delta = {}
            for key, eid in changed.items():
                if eid is None:
                    delta[key] = None
                elif eid == ev.event_id:
                    delta[key] = ev
                elif eid in loaded:
                    delta[key] = loaded[eid]
        if new_groups:
            ev.internal["sg_new"] = new_groups
        prev = room.state.get(ev.key) if ev.is_state else None
        if prev is not None and prev.event_id != ev.event_id:
            # What clients see in ``unsigned`` (as for local state events).
            ev.internal["unsigned"] = {"replaces_state": prev.event_id,
                                       "prev_content": dict(prev.content),
                                       "prev_sender": prev.sender}
        await self._maybe_redact(room, ev)
        self._count("accepted")
        d = self.rooms.commit_received(room, ev, state_delta=delta, extremities=extremities,
                                       state_group=current_group)
        return d, None

    async def _maybe_redact(self, room: RoomState, ev: Event) -> None:
        """Apply an accepted redaction to its target when the rooms' redaction rules allow:
        same server as the target's sender, or the redact power level."""
        if ev.type != "m.room.redaction" or ev.redacts is None:
            return
        target = await self.rooms.get_event(ev.redacts)
        if target is None or target.room_id != room.room_id:
            return
        if target.sender_domain == ev.sender_domain or user_power_level(
                ev.sender, room.state, room.room_version) >= named_level("redact", room.state):
            ev.internal["redacts_target"] = target.event_id

    # ======================================================================================
    # missing auth events and prev events
    # ======================================================================================
    async def _auth_events(self, origin: str, room: RoomState, ev: Event) -> dict[str, Event]:
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
                await self.persist_outlier_and_state(room.room_version, [], chain, origin,
                                                     room_id=room.room_id)
                have = await self.rooms.get_events(ids)
        return have

    async def _prevs_without_state(self, prevs: Sequence[str]) -> list[str]:
        known = self.state_store.known_groups(prevs)
        rest = [p for p in prevs if p not in known]
        if not rest:
            return []
        status = await self.db.run(store.event_status, rest)
        return [p for p in rest
                if p not in status or (status[p][0] and not status[p][2])]

    async def _fill_prev_gaps(self, origin: str, room: RoomState, ev: Event) -> None:
        missing = await self._prevs_without_state(ev.prev_event_ids)
        if not missing:
            return
        if self.max_missing > 0:
            min_depth = await self.db.run(store.min_depth_with_state, room.room_id)
            pdus = await self.remote.get_missing_events(
                origin, room.room_id, list(room.extremities), [ev.event_id],
                self.max_missing, min_depth)
            pdus = [p for p in pdus if p.get("room_id") == room.room_id]
            pdus.sort(key=_depth)
            for pdu in pdus:
                try:
                    if Event(pdu, room.room_version).event_id == ev.event_id:
                        continue
                    await self.process_pdu(origin, room, pdu, fetch_missing=False)
                except Exception:  # noqa: BLE001 - best effort: the event may still pass
                    log.exception("event=missing_event_failed room=%s", room.room_id)
            missing = await self._prevs_without_state(ev.prev_event_ids)
        for prev_id in missing[:MAX_STATE_FETCHES]:
            try:
                await self._fetch_with_state(origin, room, prev_id)
            except Exception:  # noqa: BLE001
                log.exception("event=state_fetch_failed room=%s event_id=%s", room.room_id,
                              prev_id)

    async def _fetch_with_state(self, origin: str, room: RoomState, event_id: str) -> None:
        """An event whose own predecessors we cannot get: fetch it and the state before
        it (``/state``), store that state as outliers and the event with it."""
        pdu = await self.remote.event(origin, event_id)
        if pdu is None:
            return
        sender_server = _domain(pdu.get("sender"))
        if sender_server is not None and not self.policy.allow_inbound(sender_server):
            log.info("event=gap_event_dropped event_id=%s reason=server_policy sender=%s",
                     event_id, sender_server)
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
        pool = await self.persist_outlier_and_state(room.room_version, state_pdus, chain,
                                                    origin, room_id=room.room_id)
        state_ids = self._state_map(room.room_version, state_pdus, pool)
        auth_map = await self._auth_events(origin, room, ev)
        rejected = check_against_auth_events(ev, auth_map, room.state.get(CREATE_KEY),
                                             self.is_signed_by)
        status = (await self.db.run(store.event_status, [event_id])).get(event_id)
        async with room.lock:
            before = await self.state_store.new_group_async(room.room_id, None, state_ids)
            new = [before]
            if rejected is None:
                before_state = await self._state_events(state_ids, state_keys_for_auth(ev))
                reason = check_against_state(ev, before_state, self.is_signed_by)
                if reason is not None:
                    rejected = f"state before the event: {reason}"
            after = before
            if rejected is None and ev.is_state:
                after = await self.state_store.new_group_async(
                    room.room_id, before.id, {ev.key: ev.event_id}, event_id=ev.event_id)
                new.append(after)
            ev.rejected_reason = rejected
            ev.internal["sg"] = (before.id, after.id)
            ev.internal["sg_new"] = new
            self.state_store.set_event_groups(ev.event_id, before.id, after.id)
            if status is not None:
                ev.internal["replaces_outlier"] = True
            # Part of the DAG behind our extremities: neither current state nor extremities
            # change (the event that references it merges its state in).
            d = self.rooms.commit_received(room, ev, state_delta={},
                                           extremities=list(room.extremities))
        await d

    @staticmethod
    def _state_map(rv: RoomVersion, state_pdus: Sequence[dict], pool: Mapping[str, Event]
                   ) -> StateMap:
        out: StateMap = {}
        for pdu in state_pdus:
            try:
                eid = Event(pdu, rv).event_id
            except Exception:  # noqa: BLE001
                continue
            ev = pool.get(eid)
            if ev is not None and ev.is_state and ev.rejected_reason is None:
                out[ev.key] = ev.event_id
        return out

    # ======================================================================================
    # outliers and joined rooms
    # ======================================================================================
    async def _check_batch(self, pdus: Sequence[Any], rv: RoomVersion, origin: str,
                           room_id: str | None, drop_log: str) -> dict[str, Event]:
        """Checks 1-3 (format, signatures, hashes) of a batch of PDUs fetched from
        ``origin``, by event ID (first copy wins).  Non-objects, events whose sender's server
        the policy refuses, and (with ``room_id``) events of other rooms are skipped; check
        failures are logged as ``event=<drop_log>``."""
        checked: dict[str, Event] = {}
        for pdu in pdus:
            if not isinstance(pdu, dict):
                continue
            sender_server = _domain(pdu.get("sender"))
            if sender_server is not None and not self.policy.allow_inbound(sender_server):
                continue
            try:
                ev = await check_format_signatures_hashes(pdu, rv, self.keyring)
            except Dropped as exc:
                log.info("event=%s origin=%s reason=%s", drop_log, origin, exc.reason)
                continue
            if room_id is not None and ev.room_id != room_id:
                continue
            checked.setdefault(ev.event_id, ev)
        return checked

    async def persist_outlier_and_state(self, room_version: RoomVersion | str,
                                        state_pdus: Sequence[dict],
                                        auth_chain_pdus: Sequence[dict], origin: str, *,
                                        room_id: str | None = None,
                                        new_room: dict | None = None) -> dict[str, Event]:
        """Check (steps 1-4) and store events as outliers, in auth order.

        Returns every event of ``state_pdus``/``auth_chain_pdus`` that we now hold
        (already known ones included; rejected ones with ``rejected_reason``).  PDUs that
        fail steps 1-2, belong to another room, or whose auth events never turn up are
        dropped.  ``new_room``: a ``rooms`` row to create with the first stored event."""
        rv = get_room_version(room_version) if isinstance(room_version, str) else room_version
        checked = await self._check_batch(list(auth_chain_pdus) + list(state_pdus), rv,
                                          origin, room_id, "outlier_dropped")
        pool: dict[str, Event] = dict(await self.rooms.get_events(list(checked)))
        pending = [ev for eid, ev in checked.items() if eid not in pool]
        create_id = None
        if rv.event_format.room_id_is_create_event_hash:
            rid = room_id or next((e.room_id for e in checked.values()), None)
            create_id = "$" + rid[1:] if isinstance(rid, str) and rid.startswith("!") else None
        to_store: list[Event] = []
        while pending:
            def ready(e: Event) -> bool:
                if e.type != "m.room.create" and create_id is not None \
                        and create_id not in pool:
                    return False
                return all(a in pool for a in e.auth_event_ids)
            batch = sorted((e for e in pending if ready(e)), key=lambda e: e.depth)
            if not batch:
                break
            for e in batch:
                create = pool.get(create_id) if create_id else None
                e.rejected_reason = check_against_auth_events(e, pool, create,
                                                              self.is_signed_by)
                e.internal["outlier"] = True
                pool[e.event_id] = e
                to_store.append(e)
            done = {e.event_id for e in batch}
            pending = [e for e in pending if e.event_id not in done]
        for e in pending:
            log.info("event=outlier_dropped_missing_auth event_id=%s", e.event_id)
        if to_store and new_room is not None:
            to_store[0].internal["new_room"] = new_room
        ds = []
        for e in to_store:
            self.rooms._cache_event(e)
            ds.append(self.rooms.persister.enqueue(e))
        for d in ds:
            await d
        return {eid: ev for eid, ev in pool.items() if eid in checked}

    async def persist_joined_room(self, room_version: RoomVersion | str, join_pdu: dict,
                                  state_pdus: Sequence[dict], auth_chain_pdus: Sequence[dict],
                                  origin: str) -> str:
        """Store a room we joined through ``origin`` (its ``send_join`` response): the
        state before the join and its auth chain as outliers, then the join event with
        that state.  The join becomes the only forward extremity; the room's current state
        is the state after it.  Returns the room ID.  Raises ``Forbidden`` if the join
        event does not pass the checks against that state."""
        rv = get_room_version(room_version) if isinstance(room_version, str) else room_version
        try:
            join = await check_format_signatures_hashes(join_pdu, rv, self.keyring)
        except Dropped as exc:
            raise MatrixError(f"The join event is invalid: {exc.reason}",
                              errcode="M_BAD_JSON") from None
        room_id = join.room_id
        existing = None
        if await self.rooms.room_exists(room_id):
            existing = await self.rooms.get_room(room_id)
        new_room = None
        if existing is None:
            create_pdu = next((p for p in list(state_pdus) + list(auth_chain_pdus)
                               if isinstance(p, dict) and p.get("type") == "m.room.create"),
                              None)
            if create_pdu is None:
                raise MatrixError("The room's state has no m.room.create event",
                                  errcode="M_BAD_JSON")
            create_content = create_pdu.get("content") or {}
            room_type = create_content.get("type") if isinstance(create_content, dict) \
                else None
            new_room = {"room_id": room_id, "room_version": rv.identifier,
                        "creator": str(create_pdu.get("sender")), "is_public": False,
                        "room_type": room_type if isinstance(room_type, str) else None,
                        "created_ts": self.rooms.clock.time_ms()}
        pool = await self.persist_outlier_and_state(rv, state_pdus, auth_chain_pdus, origin,
                                                    room_id=room_id, new_room=new_room)
        state_ids = self._state_map(rv, state_pdus, pool)
        create = pool.get(state_ids.get(CREATE_KEY, ""))
        if create is None:
            raise MatrixError("The room's state has no valid m.room.create event",
                              errcode="M_BAD_JSON")
        auth_pool = dict(pool)
        auth_pool.update(await self.rooms.get_events(
            [i for i in join.auth_event_ids if i not in auth_pool]))
        reason = check_against_auth_events(join, auth_pool, create, self.is_signed_by)
        state_events = {k: pool[eid] for k, eid in state_ids.items() if eid in pool}
        if reason is None:
            reason = check_against_state(join, state_events, self.is_signed_by)
        if reason is not None:
            raise Forbidden(f"The join event is not allowed by the room's state: {reason}")
        if existing is None:
            room = RoomState(room_id, rv, creator=create.sender, is_public=False,
                             room_type=new_room["room_type"] if new_room else None)
            self.rooms.add_room(room)
        else:
            room = existing
        async with room.lock:
            before = await self.state_store.new_group_async(room_id, None, state_ids)
            after = await self.state_store.new_group_async(
                room_id, before.id, {join.key: join.event_id}, event_id=join.event_id)
            join.internal["sg"] = (before.id, after.id)
            join.internal["sg_new"] = [before, after]
            self.state_store.set_event_groups(join.event_id, before.id, after.id)
            new_state = dict(state_events)
            new_state[join.key] = join
            delta: dict[tuple[str, str], Event | None] = {
                k: e for k, e in new_state.items()
                if room.state.get(k) is None or room.state[k].event_id != e.event_id}
            for k in room.state:
                if k not in new_state:
                    delta[k] = None
            status = (await self.db.run(store.event_status, [join.event_id])).get(
                join.event_id)
            if status is not None:
                join.internal["replaces_outlier"] = True
            d = self.rooms.commit_received(room, join, state_delta=delta,
                                           extremities=[join.event_id], state_group=after.id)
        await d
        return room_id

    # ======================================================================================
    # backfill
    # ======================================================================================
    async def persist_backfilled(self, origin: str, room_id: str, pdus: Sequence[Any]
                                 ) -> list[Event]:
        """Store events a ``/backfill`` answer brought (spec: "Backfilling and retrieving
        missing events").  Each passes checks 1-4 (format, signatures, hashes, its auth
        events; missing auth events are fetched with ``/event_auth``); the state before
        such old events is not known here, so they get no state groups and change neither
        the current state nor the forward extremities.  They are queued newest first and
        get stream orderings below everything in the room.  Returns the accepted new
        events, newest first (already known events are skipped)."""
        room = await self.rooms.get_room(room_id)
        rv = room.room_version
        checked = await self._check_batch(pdus, rv, origin, room_id, "backfill_dropped")
        if not checked:
            return []
        status = await self.db.run(store.event_status, list(checked))
        new = [ev for eid, ev in checked.items()
               if eid not in status or (status[eid][0] and not status[eid][2])]
        if not new:
            return []
        create = room.state.get(CREATE_KEY)
        wanted = {a for ev in new for a in ev.auth_event_ids if a not in checked}
        pool: dict[str, Event] = dict(await self.rooms.get_events(wanted))
        if any(a not in pool for a in wanted):
            missing_for = next(ev for ev in new if any(a not in pool and a not in checked
                                                       for a in ev.auth_event_ids))
            chain = await self.remote.event_auth(origin, room_id, missing_for.event_id)
            if chain:
                await self.persist_outlier_and_state(rv, [], chain, origin, room_id=room_id)
                pool.update(await self.rooms.get_events([a for a in wanted if a not in pool]))
        pool.update(checked)
        for ev in sorted(new, key=lambda e: (e.depth, e.event_id)):
            ev.rejected_reason = check_against_auth_events(ev, pool, create,
                                                           self.is_signed_by)
        ds = []
        for ev in sorted(new, key=lambda e: (-e.depth, e.event_id)):
            ev.internal["backfilled"] = True
            ev.internal["current_state_delta"] = {}
            if ev.event_id in status:
                ev.internal["replaces_outlier"] = True
            self.rooms._cache_event(ev)
            ds.append(self.rooms.persister.enqueue(ev))
        for d in ds:
            await d
        self.rooms.invalidate_history(room_id)
        return [ev for ev in sorted(new, key=lambda e: (-e.depth, e.event_id))
                if ev.rejected_reason is None]
