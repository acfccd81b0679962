"""Merging state maps of forked DAG branches with the core's state resolution.

Spec: server-server API "Room State Resolution"; ``rooms/fragments/v2-state-res.md`` (v2)
and ``rooms/v12.md`` (v2.1).  ``federation.state_res.resolve_state`` is pure and reads events
through a synchronous ``get_event``; this loads what it may read first: every event of the
state sets and, transitively, their auth events (the auth chains and the auth difference
are computed over those), in a few batched queries, then calls it.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from federation.events.model import Event, StateMap
from federation.room_versions import RoomVersion
from federation.state_res import resolve_state, separate

log = logging.getLogger("parta.federation.stateres")

MAX_EVENTS = 200_000


class StateResolver:
    def __init__(self, get_events: Any) -> None:
        """``get_events(ids) -> {id: Event}`` (async; the rooms service's)."""
        self._get_events = get_events
        self.resolutions = 0

    async def load_closure(
        self, event_ids: Sequence[str], extra: Sequence[Event] = ()
    ) -> dict[str, Event]:
        """The events and everything reachable from them through ``auth_events``
        (``extra``: events not stored yet, e.g. the one being processed)."""
        found: dict[str, Event] = {e.event_id: e for e in extra}
        frontier = set(event_ids) - set(found)
        for e in extra:
            frontier.update(a for a in e.auth_event_ids if isinstance(a, str))
        frontier -= set(found)
        while frontier and len(found) < MAX_EVENTS:
            evs = await self._get_events(sorted(frontier))
            found.update(evs)
            nxt: set[str] = set()
            for ev in evs.values():
                for auth_id in ev.auth_event_ids:
                    if isinstance(auth_id, str) and auth_id not in found:
                        nxt.add(auth_id)
            frontier = nxt - set(found) - frontier
        return found

    async def resolve(
        self,
        room_version: RoomVersion,
        room_id: str,
        state_maps: Sequence[Mapping[tuple[str, str], str]],
        extra: Sequence[Event] = (),
    ) -> StateMap:
        """The resolved state of ``state_maps`` (``StateResolutionError`` if impossible)."""
        maps = [dict(m) for m in state_maps]
        if not maps:
            return {}
        if len(maps) == 1:
            return maps[0]
        unconflicted, conflicted = separate(maps)
        if not conflicted:
            return unconflicted
        ids = {eid for m in maps for eid in m.values()}
        if room_version.event_format.room_id_is_create_event_hash and room_id.startswith("!"):
            ids.add("$" + room_id[1:])
        pool = await self.load_closure(sorted(ids), extra)
        self.resolutions += 1
        resolved = resolve_state(room_version, maps, pool.get)
        log.debug(
            "event=state_resolved room=%s sets=%d conflicted=%d events=%d",
            room_id,
            len(maps),
            len(conflicted),
            len(pool),
        )
        return resolved
