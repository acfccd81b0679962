"""Iterative auth checks, and the sender power levels used for ordering.

Spec: ``content/rooms/fragments/v2-state-res.md`` "Definitions" -> *Iterative auth
checks* and *Reverse topological power ordering* (power level "when looking at their
respective ``auth_event``s"); ``content/rooms/v12.md`` (the create event is never in
``auth_events`` in v12 but the rules always need it).

The authorization rules themselves live in ``federation.auth``; here they are only
applied.  The checks that look at the event and its listed auth events alone (rules 1-3)
were done when the event was received, so only the state-dependent rules run here.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

from ..auth.errors import AuthError
from ..auth.power_levels import user_power_level
from ..auth.rules import check_state_dependent_auth_rules
from ..events.model import Event, StateKey
from ..room_versions import RoomVersion
from .lookup import EventLookup

CREATE_KEY = ("m.room.create", "")


def _auth_events_by_key(
    event: Event, lookup: EventLookup, *, skip_rejected: bool
) -> dict[StateKey, Event]:
    """``event``'s auth events keyed by (type, state_key); the first listed wins."""
    by_key: dict[StateKey, Event] = {}
    listed = event.auth_event_ids
    for auth_id in listed if isinstance(listed, list) else ():
        if not isinstance(auth_id, str):
            continue
        auth_event = lookup.get(auth_id)
        if auth_event is None or not auth_event.is_state:
            continue
        if skip_rejected and auth_event.rejected_reason is not None:
            continue
        by_key.setdefault(auth_event.key, auth_event)
    return by_key


class AuthState(Mapping[StateKey, Event]):
    """The state an event is checked against during the iterative auth checks.

    A key present in the (partially resolved) state maps to that state's event; "if a
    key that is required for checking the authorisation rules is not present in the
    state, then the appropriate state event from the event's auth_events is used if the
    auth event is not rejected" -- the ``fallback``.  Lookups are lazy, so building one
    per event costs nothing however large the room state is.
    """

    __slots__ = ("_state", "_lookup", "_fallback")

    def __init__(
        self, state: Mapping[StateKey, str], lookup: EventLookup, fallback: Mapping[StateKey, Event]
    ) -> None:
        self._state = state
        self._lookup = lookup
        self._fallback = fallback

    def __getitem__(self, key: StateKey) -> Event:
        event_id = self._state.get(key)
        if event_id is not None:
            event = self._lookup.get(event_id)
            if event is not None:
                return event
        return self._fallback[key]

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[StateKey]:
        for key in self._state:
            if key in self:
                yield key
        for key in self._fallback:
            if key not in self._state:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


def iterative_auth_checks(
    initial_state: Mapping[StateKey, str],
    event_ids: Iterable[str],
    lookup: EventLookup,
    create_event: Event | None,
) -> dict[StateKey, str]:
    """Apply each state event in order if the authorization rules allow it.

    ``create_event`` is offered under ``("m.room.create", "")`` when neither the state
    nor the event's auth events provide it (always the case in room version 12).
    Events that fail the rules are ignored; events previously rejected against the state
    at the event are checked like any other (spec "Rejected events").
    """
    state = dict(initial_state)
    for event_id in event_ids:
        event = lookup.get(event_id)
        if event is None or not event.is_state:
            continue
        fallback = _auth_events_by_key(event, lookup, skip_rejected=True)
        if create_event is not None:
            fallback.setdefault(CREATE_KEY, create_event)
        try:
            check_state_dependent_auth_rules(event, AuthState(state, lookup, fallback))
        except AuthError:
            continue
        state[event.key] = event_id
    return state


class SenderPowerLevels:
    """The power level of an event's sender according to the event's ``auth_events``
    (plus the room's create event, which v12 never lists), memoised per event."""

    def __init__(
        self, room_version: RoomVersion, lookup: EventLookup, create_event: Event | None
    ) -> None:
        self._room_version = room_version
        self._lookup = lookup
        self._create = create_event
        self._cache: dict[str, int | float] = {}

    def __call__(self, event_id: str) -> int | float:
        try:
            return self._cache[event_id]
        except KeyError:
            pass
        event = self._lookup.require(event_id, "event to order")
        state = _auth_events_by_key(event, self._lookup, skip_rejected=False)
        if self._create is not None:
            state.setdefault(CREATE_KEY, self._create)
        level = user_power_level(event.sender, state, self._room_version)
        self._cache[event_id] = level
        return level
