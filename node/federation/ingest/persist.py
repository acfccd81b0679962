"""Inbound PDUs fetched in bulk: outliers, joined rooms and backfilled history.

Spec: server-server API "Joining Rooms" (the ``send_join`` response: the state before the
join and its auth chain, stored as outliers, then the join event), "Checks performed on
receipt of a PDU" (steps 1-4 for outliers; steps 5 for the join against that state),
"Backfilling and retrieving missing events" (``/backfill`` history, stored below every
stream ordering of the room).
"""

from __future__ import annotations

from typing import Any, Sequence

from federation.errors import Forbidden, MatrixError
from federation.events.model import Event
from federation.room_versions import RoomVersion, get_room_version
from node.rooms.event_meta import meta
from node.rooms.state_cache import RoomState

from .. import store
from ..pdu_checks import (
    CREATE_KEY,
    Dropped,
    check_against_auth_events,
    check_against_state,
    check_format_signatures_hashes,
)
from ..remote_fetch import RemoteEvents
from ._common import SignedBy, log, state_map
from .checks import Checks


class Persist:
    """Outliers, ``send_join`` responses and backfill: events fetched in bulk, checked
    (1-3 by ``checks``, 4 here) and stored."""

    def __init__(
        self,
        *,
        rooms: Any,
        state_store: Any,
        keyring: Any,
        remote: RemoteEvents,
        checks: Checks,
        is_signed_by: SignedBy,
    ) -> None:
        self.rooms = rooms  # node.rooms.RoomService: rooms, events, the persister
        self.db = rooms.db
        self.state_store = state_store
        self.keyring = keyring
        self.remote = remote
        self.checks = checks
        self.is_signed_by = is_signed_by

    # ======================================================================================
    # outliers and joined rooms
    # ======================================================================================
    async def persist_outlier_and_state(
        self,
        room_version: RoomVersion | str,
        state_pdus: Sequence[dict],
        auth_chain_pdus: Sequence[dict],
        origin: str,
        *,
        room_id: str | None = None,
        new_room: dict | None = None,
    ) -> dict[str, Event]:
        """Check (steps 1-4) and store events as outliers, in auth order.

        Returns every event of ``state_pdus``/``auth_chain_pdus`` that we now hold
        (already known ones included; rejected ones with ``rejected_reason``).  PDUs that
        fail steps 1-2, belong to another room, or whose auth events never turn up are
        dropped.  ``new_room``: a ``rooms`` row to create with the first stored event."""
        rv = get_room_version(room_version) if isinstance(room_version, str) else room_version
        checked = await self.checks.check_batch(
            list(auth_chain_pdus) + list(state_pdus), rv, origin, room_id, "outlier_dropped"
        )
        pool: dict[str, Event] = dict(await self.rooms.get_events(list(checked)))
        pending = [ev for eid, ev in checked.items() if eid not in pool]
        create_id = None
        if rv.event_format.room_id_is_create_event_hash:
            rid = room_id or next((e.room_id for e in checked.values()), None)
            create_id = "$" + rid[1:] if isinstance(rid, str) and rid.startswith("!") else None
        to_store: list[Event] = []
        while pending:

            def ready(e: Event) -> bool:
                if e.type != "m.room.create" and create_id is not None and create_id not in pool:
                    return False
                return all(a in pool for a in e.auth_event_ids)

            batch = sorted((e for e in pending if ready(e)), key=lambda e: e.depth)
            if not batch:
                break
            for e in batch:
                create = pool.get(create_id) if create_id else None
                e.rejected_reason = check_against_auth_events(e, pool, create, self.is_signed_by)
                meta(e).outlier = True
                pool[e.event_id] = e
                to_store.append(e)
            done = {e.event_id for e in batch}
            pending = [e for e in pending if e.event_id not in done]
        for e in pending:
            log.info("event=outlier_dropped_missing_auth event_id=%s", e.event_id)
        if to_store and new_room is not None:
            meta(to_store[0]).new_room = new_room
        ds = []
        for e in to_store:
            ds.append(self.rooms.enqueue_applied(e))
        self.rooms.persister.flush()  # maybe under a transaction's hold
        for d in ds:
            await d
        return {eid: ev for eid, ev in pool.items() if eid in checked}

    async def persist_joined_room(
        self,
        room_version: RoomVersion | str,
        join_pdu: dict,
        state_pdus: Sequence[dict],
        auth_chain_pdus: Sequence[dict],
        origin: str,
    ) -> str:
        """Store a room we joined through ``origin`` (its ``send_join`` response): the
        state before the join and its auth chain as outliers, then the join event with
        that state.  The join becomes the only forward extremity; the room's current state
        is the state after it.  Returns the room ID.  Raises ``Forbidden`` if the join
        event does not pass the checks against that state."""
        rv = get_room_version(room_version) if isinstance(room_version, str) else room_version
        try:
            join = await check_format_signatures_hashes(join_pdu, rv, self.keyring)
        except Dropped as exc:
            raise MatrixError(
                f"The join event is invalid: {exc.reason}", errcode="M_BAD_JSON"
            ) from None
        room_id = join.room_id
        existing = None
        if await self.rooms.room_exists(room_id):
            existing = await self.rooms.get_room(room_id)
        new_room = None
        if existing is None:
            create_pdu = next(
                (
                    p
                    for p in list(state_pdus) + list(auth_chain_pdus)
                    if isinstance(p, dict) and p.get("type") == "m.room.create"
                ),
                None,
            )
            if create_pdu is None:
                raise MatrixError(
                    "The room's state has no m.room.create event", errcode="M_BAD_JSON"
                )
            create_content = create_pdu.get("content") or {}
            room_type = create_content.get("type") if isinstance(create_content, dict) else None
            new_room = {
                "room_id": room_id,
                "room_version": rv.identifier,
                "creator": str(create_pdu.get("sender")),
                "is_public": False,
                "room_type": room_type if isinstance(room_type, str) else None,
                "created_ts": self.rooms.clock.time_ms(),
            }
        pool = await self.persist_outlier_and_state(
            rv, state_pdus, auth_chain_pdus, origin, room_id=room_id, new_room=new_room
        )
        state_ids = state_map(rv, state_pdus, pool)
        create = pool.get(state_ids.get(CREATE_KEY, ""))
        if create is None:
            raise MatrixError(
                "The room's state has no valid m.room.create event", errcode="M_BAD_JSON"
            )
        auth_pool = dict(pool)
        auth_pool.update(
            await self.rooms.get_events([i for i in join.auth_event_ids if i not in auth_pool])
        )
        reason = check_against_auth_events(join, auth_pool, create, self.is_signed_by)
        state_events = {k: pool[eid] for k, eid in state_ids.items() if eid in pool}
        if reason is None:
            reason = check_against_state(join, state_events, self.is_signed_by)
        if reason is not None:
            raise Forbidden(f"The join event is not allowed by the room's state: {reason}")
        if existing is None:
            room = RoomState(
                room_id,
                rv,
                creator=create.sender,
                is_public=False,
                room_type=new_room["room_type"] if new_room else None,
            )
            self.rooms.add_room(room)
        else:
            room = existing
        async with room.lock:
            before = await self.state_store.new_group_async(room_id, None, state_ids)
            after = await self.state_store.new_group_async(
                room_id, before.id, {join.key: join.event_id}, event_id=join.event_id
            )
            meta(join).sg = (before.id, after.id)
            meta(join).sg_new = [before, after]
            self.state_store.set_event_groups(join.event_id, before.id, after.id)
            new_state = dict(state_events)
            new_state[join.key] = join
            delta: dict[tuple[str, str], Event | None] = {
                k: e
                for k, e in new_state.items()
                if room.state.get(k) is None or room.state[k].event_id != e.event_id
            }
            for k in room.state:
                if k not in new_state:
                    delta[k] = None
            status = (await self.db.run(store.event_status, [join.event_id])).get(join.event_id)
            if status is not None:
                meta(join).replaces_outlier = True
            d = self.rooms.commit_received(
                room, join, state_delta=delta, extremities=[join.event_id], state_group=after.id
            )
        self.rooms.persister.flush()  # maybe under a transaction's hold
        await d
        return room_id

    # ======================================================================================
    # backfill
    # ======================================================================================
    async def persist_backfilled(
        self, origin: str, room_id: str, pdus: Sequence[Any]
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
        checked = await self.checks.check_batch(pdus, rv, origin, room_id, "backfill_dropped")
        if not checked:
            return []
        status = await self.db.run(store.event_status, list(checked))
        new = [
            ev
            for eid, ev in checked.items()
            if eid not in status or (status[eid][0] and not status[eid][2])
        ]
        if not new:
            return []
        create = room.state.get(CREATE_KEY)
        wanted = {a for ev in new for a in ev.auth_event_ids if a not in checked}
        pool: dict[str, Event] = dict(await self.rooms.get_events(wanted))
        if any(a not in pool for a in wanted):
            missing_for = next(
                ev
                for ev in new
                if any(a not in pool and a not in checked for a in ev.auth_event_ids)
            )
            chain = await self.remote.event_auth(origin, room_id, missing_for.event_id)
            if chain:
                await self.persist_outlier_and_state(rv, [], chain, origin, room_id=room_id)
                pool.update(await self.rooms.get_events([a for a in wanted if a not in pool]))
        pool.update(checked)
        for ev in sorted(new, key=lambda e: (e.depth, e.event_id)):
            ev.rejected_reason = check_against_auth_events(ev, pool, create, self.is_signed_by)
        ds = []
        for ev in sorted(new, key=lambda e: (-e.depth, e.event_id)):
            meta(ev).backfilled = True
            meta(ev).current_state_delta = {}
            if ev.event_id in status:
                meta(ev).replaces_outlier = True
            ds.append(self.rooms.enqueue_applied(ev))
        self.rooms.persister.flush()  # maybe under a transaction's hold
        for d in ds:
            await d
        self.rooms.invalidate_history(room_id)
        return [
            ev
            for ev in sorted(new, key=lambda e: (-e.depth, e.event_id))
            if ev.rejected_reason is None
        ]
