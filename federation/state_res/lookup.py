"""Cached event lookups for one state resolution run.

Spec: ``content/rooms/fragments/v2-state-res.md`` -- the algorithm walks ``auth_events``
edges many times (auth difference, conflicted subgraph, orderings, iterative auth
checks); every lookup goes through one cache so each event is fetched once.
"""

from __future__ import annotations

from typing import Callable

from ..events.model import Event
from .errors import StateResolutionError

GetEvent = Callable[[str], "Event | None"]


class EventLookup:
    """Memoising wrapper around the caller's ``get_event``.

    Missing events are cached as ``None``.  Once ``room_id`` is set, every event fetched
    (and every event already fetched) must be in that room.
    """

    __slots__ = ("_get_event", "_events", "_auth_ids", "room_id")

    def __init__(self, get_event: GetEvent) -> None:
        self._get_event = get_event
        self._events: dict[str, Event | None] = {}
        self._auth_ids: dict[str, tuple[str, ...]] = {}
        self.room_id: str | None = None

    def set_room(self, room_id: str) -> None:
        self.room_id = room_id
        for event in self._events.values():
            if event is not None:
                self._check_room(event)

    def _check_room(self, event: Event) -> None:
        if event.room_id != self.room_id:
            raise StateResolutionError(
                f"event {event.event_id} is in room {event.room_id!r}, not {self.room_id!r}"
            )

    def get(self, event_id: str) -> Event | None:
        try:
            return self._events[event_id]
        except KeyError:
            pass
        event = self._get_event(event_id)
        if event is not None and self.room_id is not None:
            self._check_room(event)
        self._events[event_id] = event
        return event

    def require(self, event_id: str, what: str) -> Event:
        event = self.get(event_id)
        if event is None:
            raise StateResolutionError(f"{what} {event_id} is not available")
        return event

    def auth_ids(self, event_id: str) -> tuple[str, ...]:
        """The ``auth_events`` of ``event_id`` (empty when the event is missing)."""
        try:
            return self._auth_ids[event_id]
        except KeyError:
            pass
        event = self.get(event_id)
        ids: tuple[str, ...] = ()
        if event is not None:
            listed = event.auth_event_ids
            if isinstance(listed, list):
                ids = tuple(i for i in listed if isinstance(i, str))
        self._auth_ids[event_id] = ids
        return ids
