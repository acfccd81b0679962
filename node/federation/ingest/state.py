"""Inbound PDUs, under the room's lock: state before the event, steps 5-6, commit.

Spec: server-server API "Checks performed on receipt of a PDU" (step 5: the state before
the event; step 6: the current state), "Rejection" (a rejected event is stored but neither
shown to clients nor used as a prev event, and the state is calculated as if it were not
there), "Soft failure" (passes the state before it, fails the current state: stored, takes
part in state resolution, not shown, not a forward extremity), "Room State Resolution"
(forks are merged with the room version's algorithm); client-server "Redactions" (an
accepted redaction applied to its target).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from twisted.internet import defer

from federation.auth.power_levels import named_level, user_power_level
from federation.errors import NotFound
from federation.events.model import Event
from federation.state_res import StateResolutionError
from node.rooms.event_meta import meta
from node.rooms.state_cache import RoomState
from node.rooms.state_store import GroupRecord, StateMap, diff_states

from ..pdu_checks import CREATE_KEY, check_against_state, state_keys_for_auth
from ..state_resolution import StateResolver
from ._common import Outcomes, SignedBy, log, state_events


class StateCommit:
    """State before / after an event, steps 5-6 and the hand-over to the persister."""

    def __init__(
        self,
        *,
        rooms: Any,
        state_store: Any,
        resolver: StateResolver,
        is_signed_by: SignedBy,
        outcomes: Outcomes,
    ) -> None:
        self.rooms = rooms  # node.rooms.RoomService: events, commit_received
        self.state_store = state_store
        self.resolver = resolver
        self.is_signed_by = is_signed_by
        self.outcomes = outcomes

    # ======================================================================================
    # state before / after, under the room's lock
    # ======================================================================================
    async def _after_states(
        self, event_ids: Sequence[str]
    ) -> list[tuple[int | None, StateMap]] | None:
        """(group, state after) of each event; None if one has no known state."""
        groups = await self.state_store.get_event_groups(event_ids)
        out: list[tuple[int | None, StateMap]] = []
        for eid in event_ids:
            g = groups.get(eid)
            if g is not None:
                out.append((g[1], await self.state_store.get_state(g[1])))
                continue
            try:  # events from before state groups: the linear history
                out.append((None, await self.state_store.get_state_ids_after(eid)))
            except NotFound:
                return None
        return out

    async def _merge(
        self,
        room: RoomState,
        states: list[tuple[int | None, StateMap]],
        extra: Sequence[Event] = (),
    ) -> tuple[int, StateMap, list[GroupRecord]]:
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
                room.room_id, base, diff_states(by_group[base], resolved)
            )
        return rec.id, resolved, [rec]

    def _ensure_room_group(self, room: RoomState, ev: Event, new: list[GroupRecord]) -> None:
        if room.state_group is None:  # a room from before state groups
            rec = self.state_store.new_group(
                room.room_id, None, {k: e.event_id for k, e in room.state.items()}
            )
            new.append(rec)
            room.state_group = rec.id
            meta(ev).sg_current = (room.room_id, rec.id)

    @staticmethod
    def _auth_state_is_current(room: RoomState, ev: Event, auth_map: Mapping[str, Event]) -> bool:
        """Do the event's auth events hold, for every key the auth rules may consult,
        exactly the room's current state?  Then step 5 on the current state would repeat
        step 4 (same rules, same events)."""
        listed = {
            e.key: e.event_id
            for eid in ev.auth_event_ids
            if (e := auth_map.get(eid)) is not None and e.is_state
        }
        for key in state_keys_for_auth(ev):
            if key == CREATE_KEY:
                continue
            current = room.state.get(key)
            if (current.event_id if current is not None else None) != listed.get(key):
                return False
        return True

    def _auth_state_is_current_memo(
        self,
        room: RoomState,
        ev: Event,
        auth_map: Mapping[str, Event],
        memo_key: tuple | None,
        auth_memo: dict | None,
    ) -> bool:
        """``_auth_state_is_current``, remembered within a transaction for events with the
        same ``_auth_memo_key`` while the room's current state group stays the same (every
        change of the current state makes a new group)."""
        if memo_key is None or auth_memo is None or room.state_group is None:
            return self._auth_state_is_current(room, ev, auth_map)
        key = ("current", memo_key, room.state_group)
        hit = auth_memo.get(key)
        if hit is None:
            hit = auth_memo[key] = self._auth_state_is_current(room, ev, auth_map)
        return hit

    async def commit(
        self,
        room: RoomState,
        ev: Event,
        rejected: str | None,
        auth_map: Mapping[str, Event] | None = None,
        *,
        replaces_outlier: bool,
        memo_key: tuple | None = None,
        auth_memo: dict | None = None,
    ) -> tuple[defer.Deferred | None, str | None]:
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
            before_state = await state_events(self.rooms, before_ids, state_keys_for_auth(ev))
        # 5. auth rules against the state before the event (the same check as step 4
        # when the auth events are the current state and that is the state before)
        if rejected is None and not (
            fast
            and auth_map is not None
            and self._auth_state_is_current_memo(room, ev, auth_map, memo_key, auth_memo)
        ):
            reason = check_against_state(ev, before_state, self.is_signed_by)
            if reason is not None:
                rejected = f"state before the event: {reason}"
        after_group = before_group
        if rejected is None and ev.is_state:
            rec = await self.state_store.new_group_async(
                room.room_id, before_group, {ev.key: ev.event_id}, event_id=ev.event_id
            )
            new_groups.append(rec)
            after_group = rec.id
        # 6. auth rules against the current state: soft failure
        soft_failed = False
        if rejected is None and not fast:
            soft_failed = check_against_state(ev, room.state, self.is_signed_by) is not None
        assert before_group is not None and after_group is not None
        ev.rejected_reason = rejected
        meta(ev).sg = (before_group, after_group)
        self.state_store.set_event_groups(ev.event_id, before_group, after_group)
        if replaces_outlier:
            meta(ev).replaces_outlier = True
        if rejected is not None or soft_failed:
            if new_groups:
                meta(ev).sg_new = new_groups
            if soft_failed:
                meta(ev).outlier = True
                meta(ev).soft_failed = True
                self.outcomes.count("soft_failed")
                log.info("event=pdu_soft_failed event_id=%s room=%s", ev.event_id, room.room_id)
            else:
                self.outcomes.count("rejected")
                log.info(
                    "event=pdu_rejected event_id=%s room=%s reason=%s",
                    ev.event_id,
                    room.room_id,
                    rejected,
                )
            d = self.rooms.commit_received(room, ev)
            return d, (f"Event rejected: {rejected}" if rejected is not None else None)

        # Accepted: forward extremities, current state (resolved across the extremities).
        extremities = [e for e in room.extremities if e not in prevs] + [ev.event_id]
        current_ids = {k: e.event_id for k, e in room.state.items()} if not fast else None
        current_group: int | None  # the room's current group may be unknown yet (None)
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
                        room, [(after_group, after_ids)] + others, extra=[ev]
                    )
                except StateResolutionError as exc:
                    log.warning(
                        "event=current_state_resolution_failed room=%s error=%s", room.room_id, exc
                    )
                    current_group, new_ids, recs = room.state_group, dict(current_ids or {}), []
                new_groups += recs
            changed = diff_states(current_ids or {}, new_ids)
            loaded = await self.rooms.get_events(
                [v for v in changed.values() if v is not None and v != ev.event_id]
            )
            delta = {}
            for key, eid in changed.items():
                if eid is None:
                    delta[key] = None
                elif eid == ev.event_id:
                    delta[key] = ev
                elif eid in loaded:
                    delta[key] = loaded[eid]
        if new_groups:
            meta(ev).sg_new = new_groups
        prev = room.state.get(ev.key) if ev.is_state else None
        if prev is not None and prev.event_id != ev.event_id:
            # What clients see in ``unsigned`` (as for local state events).
            meta(ev).unsigned = {
                "replaces_state": prev.event_id,
                "prev_content": dict(prev.content),
                "prev_sender": prev.sender,
            }
        await self._maybe_redact(room, ev)
        self.outcomes.count("accepted")
        d = self.rooms.commit_received(
            room, ev, state_delta=delta, extremities=extremities, state_group=current_group
        )
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
            ev.sender, room.state, room.room_version
        ) >= named_level("redact", room.state):
            meta(ev).redacts_target = target.event_id
