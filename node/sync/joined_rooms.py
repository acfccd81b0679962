"""``rooms.join`` of a ``/sync`` answer (client-server API "Syncing", ``GET /sync``'s
``JoinedRoom``, https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3sync):
a room's timeline, the state before it, ephemeral events (typing, receipts), room account
data, the summary and the unread counts.

A *full* entry (initial sync, ``full_state``, a room joined since the token) carries the
state at the start of the timeline; an *incremental* one only the state changes of a gap
when the timeline is ``limited`` -- and is left out when nothing in it changed.
"""

from __future__ import annotations

from typing import Any

from federation.events.model import Event
from node.stream_tokens import events_token

from .formatting import allow_timeline, format_event
from .lazy_members import LazyMembers
from .params import SyncRun
from .room_state import MEMBER, RoomStateReader, Timeline, has_name, stream_of, summary
from .unread_counts import UnreadCounts


class JoinedRooms:
    def __init__(
        self,
        *,
        rooms: Any,
        notifier: Any,
        typing: Any,
        state: RoomStateReader,
        lazy: LazyMembers,
        unread: UnreadCounts,
    ) -> None:
        self.rooms = rooms
        self.notifier = notifier
        self.typing = typing
        self.state = state
        self.lazy = lazy
        self.unread = unread

    async def full(self, run: SyncRun, room_id: str, lower: int | None, vis: tuple | None) -> dict:
        user_id = run.user_id
        if vis is None:
            vis = await self.rooms.visibility_timelines(room_id, user_id)
        tl = await self.state.fetch_timeline(
            room_id,
            user_id,
            lower,
            run.upper.events,
            run.filter.timeline_limit,
            allow_timeline(run, room_id),
            vis,
        )
        start = tl.prev_pos if (tl.events or tl.limited) else run.upper.events
        current = await self.state.current_state(room_id)
        summ = summary(current, user_id)
        if run.filter.lazy_load_members:
            wanted = {ev.sender for ev in tl.events} | {user_id} | set(summ["m.heroes"])
            at_start = await self.state.state_at_timeline_start(room_id, tl, start)
            state_evs = [ev for k, ev in at_start.items() if k[0] != MEMBER or k[1] in wanted]
            self.lazy.reset_room(
                run, room_id, [ev for ev in state_evs + tl.events if ev.type == MEMBER]
            )
        else:
            state_evs = list(
                (await self.state.state_at_timeline_start(room_id, tl, start)).values()
            )
        state_evs.sort(key=lambda e: stream_of(e) or 0)
        entry = self._entry(run, room_id, tl, state_evs, current, summ, typing_always=True)
        await self.unread.add(run, room_id, entry, tl, current)
        return entry

    async def incremental(self, run: SyncRun, room_id: str) -> dict | None:
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
                allow_timeline(run, room_id),
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
                state_evs.extend(self.lazy.not_sent(run, room_id, members.values()))
            self.lazy.room(run, room_id).update(ev.event_id for ev in delivered)
        current = None
        summ = None
        if any(ev.type == MEMBER for ev in tl.events) or any(ev.type == MEMBER for ev in state_evs):
            current = await self.state.current_state(room_id)
            summ = summary(current, user_id)
        # An erased sender's events are decided from the timelines (node/rooms/erasure.py).
        await self.rooms.erasure.prepare(self.rooms, room_id, user_id, tl.events + state_evs)
        entry = self._entry(run, room_id, tl, state_evs, current, summ, typing_always=False)
        has_content = bool(
            entry["timeline"]["events"]
            or entry["state"]["events"]
            or entry["ephemeral"]["events"]
            or entry["account_data"]["events"]
        )
        counts_changed = await self.unread.add(run, room_id, entry, tl, current)
        if not has_content and not counts_changed:
            return None
        return entry

    def _entry(
        self,
        run: SyncRun,
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
        rooms = self.rooms
        state_out = [
            format_event(rooms, run, ev)
            for ev in state_evs
            if sf.is_pass_all or sf.allows(ev.type, ev.sender, ev.content, room_id)
        ]
        entry: dict = {
            "timeline": {
                "events": [format_event(rooms, run, ev) for ev in tl.events],
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

    def _ephemeral(self, run: SyncRun, room_id: str, typing_always: bool) -> list[dict]:
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
