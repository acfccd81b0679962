"""State resolution v2 (room versions 2-11) and v2.1 (room version 12).

Spec: ``content/rooms/fragments/v2-state-res.md`` "Algorithm"; ``content/rooms/v12.md``
"State resolution" for v2.1, which (1) starts the first iterative auth checks from an
*empty* state map instead of the unconflicted state map and (2) adds the *conflicted
state subgraph* to the full conflicted set.

``resolve_state`` is pure: it reads events only through the ``get_event`` callback, keeps
its caches for the duration of one call, and never touches a clock or I/O.

Readings of the spec where it leaves room (each noted where it is implemented):

* the full auth chain of a state set includes the set's own events (``auth_chain.py``);
* the DAG ordered in step 1 has the ``auth_events`` references between events of X as
  edges (``ordering.py``);
* X is the power events plus their auth chains intersected with the full conflicted set,
  as the spec words it;
* previously rejected events are re-checked like any other in the iterative auth checks,
  and only the *auth events* fallback skips rejected events (spec "Rejected events");
* the iterative auth checks apply the state-dependent authorization rules (rules 4-11;
  v10/v11: 3-10) -- rules 1-3 concern an event and its own auth events and were checked
  when the event was received.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from ..events.model import Event, StateKey, StateMap
from ..room_versions import RoomVersion, StateResAlgorithm
from .auth_chain import ancestors, auth_difference, conflicted_subgraph
from .errors import StateResolutionError
from .iterative import CREATE_KEY, SenderPowerLevels, iterative_auth_checks
from .lookup import EventLookup
from .ordering import (
    POWER_LEVELS_KEY,
    is_power_event,
    mainline_ordering,
    reverse_topological_power_ordering,
)


def separate(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[StateMap, dict[StateKey, set[str]]]:
    """Split into the *unconflicted state map* and the *conflicted state set* (by key).

    A key is unconflicted iff every state set has it with the same event; otherwise the
    events the sets have for it (one per set, at most) are conflicted.
    """
    unconflicted: StateMap = {}
    conflicted: dict[StateKey, set[str]] = {}
    keys: set[StateKey] = set()
    for state in state_sets:
        keys.update(state)
    for key in keys:
        ids: set[str] = set()
        missing = False
        for state in state_sets:
            event_id = state.get(key)
            if event_id is None:
                missing = True
            else:
                ids.add(event_id)
        if len(ids) == 1 and not missing:
            unconflicted[key] = ids.pop()
        else:
            conflicted[key] = ids
    return unconflicted, conflicted


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    get_event: Callable[[str], Event | None],
) -> StateMap:
    """The resolution of ``state_sets`` ((type, state_key) -> event ID maps).

    ``get_event`` returns any event of the room by ID (or None).  The algorithm follows
    ``room_version.state_res.algorithm`` (v2 or v2.1).  Raises ``StateResolutionError``
    when an essential event is missing: a conflicted state event, or (v12) the create
    event; events only reachable through ``auth_events`` are skipped when missing.
    """
    sets = [dict(state) for state in state_sets]
    if not sets:
        return {}
    unconflicted, conflicted = separate(sets)
    if not conflicted:
        # Every set is identical: the algorithm would replay nothing.
        return unconflicted

    v2_1 = room_version.state_res.algorithm is StateResAlgorithm.V2_1
    lookup = EventLookup(get_event)

    # The conflicted events are what we resolve between: they must all be known, be
    # state events with the key the state sets file them under, and be in one room.
    conflicted_ids: set[str] = set()
    for key in sorted(conflicted):
        for event_id in sorted(conflicted[key]):
            event = lookup.require(event_id, "conflicted state event")
            if not event.is_state or event.key != key:
                raise StateResolutionError(
                    f"state set maps {key} to {event_id}, which is not such a state event"
                )
            if lookup.room_id is None:
                # From here on every event looked up must be in this room.
                lookup.set_room(event.room_id)
            conflicted_ids.add(event_id)

    create_event = _find_create_event(room_version, sets, lookup)
    sender_power = SenderPowerLevels(room_version, lookup, create_event)

    # Full conflicted set: conflicted state set ∪ auth difference (∪ conflicted state
    # subgraph in v2.1), reduced to the state events we can look up.
    full_conflicted = conflicted_ids | auth_difference(
        [set(state.values()) for state in sets], lookup
    )
    if v2_1:
        full_conflicted |= conflicted_subgraph(conflicted_ids, lookup)
    full_conflicted = {
        event_id
        for event_id in full_conflicted
        if (found := lookup.get(event_id)) is not None and found.is_state
    }

    # 1. X: the power events of the full conflicted set, plus the events of their auth
    #    chains that are in the full conflicted set; in reverse topological power order.
    power_events = {
        e for e in full_conflicted if is_power_event(lookup.require(e, "conflicted event"))
    }
    selected = power_events | (ancestors(power_events, lookup) & full_conflicted)
    ordered_power = reverse_topological_power_ordering(selected, lookup, sender_power)

    # 2. Iterative auth checks from the unconflicted state map (v2) or from an empty
    #    state map (v2.1).
    initial: StateMap = {} if v2_1 else dict(unconflicted)
    partial = iterative_auth_checks(initial, ordered_power, lookup, create_event)

    # 3. The remaining events, in mainline order based on the partially resolved power
    #    levels event.
    remaining = mainline_ordering(full_conflicted - selected, partial.get(POWER_LEVELS_KEY), lookup)

    # 4. Iterative auth checks on the partially resolved state.
    resolved = iterative_auth_checks(partial, remaining, lookup, create_event)

    # 5. The unconflicted state map overrides whatever the replay produced.
    resolved.update(unconflicted)
    return resolved


def _find_create_event(
    room_version: RoomVersion, sets: Sequence[StateMap], lookup: EventLookup
) -> Event | None:
    """The room's ``m.room.create`` event.

    v12: its ID is the room ID with ``$`` for ``!``; it is essential, because it is never
    among ``auth_events`` yet the authorization rules need it.  Earlier versions list it
    in every event's ``auth_events``, so the one in the state sets is only a fallback.
    """
    in_sets = {state[CREATE_KEY] for state in sets if CREATE_KEY in state}
    if len(in_sets) > 1:
        raise StateResolutionError(
            f"the state sets have different create events: {sorted(in_sets)}"
        )
    if room_version.event_format.room_id_is_create_event_hash:
        room_id = lookup.room_id
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise StateResolutionError(f"room ID {room_id!r} does not name a create event")
        create_id = "$" + room_id[1:]
        if in_sets and in_sets != {create_id}:
            raise StateResolutionError(
                f"the state sets' create event {in_sets.pop()} is not {create_id}"
            )
        create = lookup.require(create_id, "m.room.create event")
    elif in_sets:
        in_set = lookup.get(in_sets.pop())
        if in_set is None:
            return None
        create = in_set
    else:
        return None
    if not create.is_state or create.key != CREATE_KEY:
        raise StateResolutionError(f"{create.event_id} is not an m.room.create event")
    return create
