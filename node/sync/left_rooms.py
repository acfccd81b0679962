"""``rooms.leave`` of a ``/sync`` answer (client-server API "Syncing", ``GET /sync``'s
``LeftRoom``, https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3sync): the
timeline up to the user's leave, kick or ban, and the state before it.  The user sees nothing
after their membership ended.
"""

from __future__ import annotations

from typing import Any

from federation.events.model import Event
from node.stream_tokens import events_token

from .formatting import allow_timeline, format_event
from .params import SyncRun
from .room_state import MEMBER, RoomStateReader, stream_of


class LeftRooms:
    def __init__(self, *, rooms: Any, state: RoomStateReader) -> None:
        self.rooms = rooms
        self.state = state

    async def entry(self, run: SyncRun, room_id: str, leave_ev: Event, lower: int | None) -> dict:
        user_id = run.user_id
        leave_pos = stream_of(leave_ev) or run.upper.events
        vis = await self.rooms.visibility_timelines(room_id, user_id)
        tl = await self.state.fetch_timeline(
            room_id,
            user_id,
            lower,
            leave_pos,
            run.filter.timeline_limit,
            allow_timeline(run, room_id),
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
        rooms = self.rooms
        return {
            "timeline": {
                "events": [format_event(rooms, run, ev) for ev in tl.events],
                "limited": tl.limited,
                "prev_batch": events_token(tl.prev_pos),
            },
            "state": {
                "events": [
                    format_event(rooms, run, ev)
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
