"""Lazy-loading room members: which member events each client device already has, so an
incremental ``/sync`` leaves out the redundant ones (client-server API "Lazy-loading room
members", https://spec.matrix.org/v1.16/client-server-api/#lazy-loading-room-members).

Remembered per (user, device) and room in memory, bounded: the least recently syncing
devices are forgotten first, and a room's set starts over once it grows past
``_ROOM_LIMIT`` (the client then merely receives a few members again).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

from federation.events.model import Event

from .params import SyncRun

_LL_CACHE = 5_000
_ROOM_LIMIT = 2000


class LazyMembers:
    def __init__(self) -> None:
        self._sent: OrderedDict[tuple[str, str | None], dict[str, set[str]]] = OrderedDict()

    def room(self, run: SyncRun, room_id: str) -> set[str]:
        """The member event IDs this device was sent for ``room_id``."""
        key = (run.user_id, getattr(run.p.requester, "device_id", None))
        rooms = self._sent.get(key)
        if rooms is None:
            rooms = self._sent[key] = {}
            if len(self._sent) > _LL_CACHE:
                self._sent.popitem(last=False)
        else:
            self._sent.move_to_end(key)
        sent = rooms.get(room_id)
        if sent is None or len(sent) > _ROOM_LIMIT:
            sent = rooms[room_id] = set()
        return sent

    def reset_room(self, run: SyncRun, room_id: str, members: list[Event]) -> None:
        """A full-state answer: the client now knows exactly the members sent here."""
        sent = self.room(run, room_id)
        sent.clear()
        sent.update(ev.event_id for ev in members)

    def not_sent(self, run: SyncRun, room_id: str, members: Iterable[Event]) -> list[Event]:
        """The members the device lacks (all with ``include_redundant_members``), now sent."""
        sent = self.room(run, room_id)
        out = []
        for ev in members:
            if run.filter.include_redundant_members or ev.event_id not in sent:
                out.append(ev)
                sent.add(ev.event_id)
        return out
