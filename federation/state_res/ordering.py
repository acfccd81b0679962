"""The two orderings of state resolution v2: reverse topological power and mainline.

Spec: ``content/rooms/fragments/v2-state-res.md`` "Definitions" -> *Power events*,
*Reverse topological power ordering*, *Mainline ordering* (unchanged in v2.1,
``content/rooms/v12.md``).
"""

from __future__ import annotations

import heapq
from typing import Callable, Iterable

from ..events.model import Event
from .errors import StateResolutionError
from .lookup import EventLookup

POWER_LEVELS_KEY = ("m.room.power_levels", "")
JOIN_RULES_KEY = ("m.room.join_rules", "")
INFINITY = float("inf")


def origin_ts(event: Event) -> int:
    """``origin_server_ts`` for ordering (0 when not an integer, so keys stay comparable)."""
    ts = event.origin_server_ts
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else 0


def is_power_event(event: Event) -> bool:
    """*Power event*: ``m.room.power_levels``, ``m.room.join_rules``, or an
    ``m.room.member`` with membership ``leave`` or ``ban`` whose sender is not the
    ``state_key`` (a kick or a ban)."""
    if not event.is_state:
        return False
    key = event.key
    if key == POWER_LEVELS_KEY or key == JOIN_RULES_KEY:
        return True
    if event.type == "m.room.member":
        return event.membership in ("leave", "ban") and event.sender != event.state_key
    return False


def reverse_topological_power_ordering(
    event_ids: Iterable[str], lookup: EventLookup, sender_power: Callable[[str], int | float]
) -> list[str]:
    """Kahn's algorithm over the auth DAG of ``event_ids``, earliest first.

    The DAG's edges are the ``auth_events`` references between members of the set (an
    event comes after the events it cites).  Among the events whose auth events are all
    placed, the smallest is taken next, where x < y if (1) x's sender has the *greater*
    power level (``sender_power(x)``: according to x's own ``auth_events``), else (2) x's
    ``origin_server_ts`` is smaller, else (3) x's ``event_id`` is smaller.
    """
    nodes = set(event_ids)
    waiting_on: dict[str, int] = {}
    cited_by: dict[str, list[str]] = {}
    for node in nodes:
        parents = {a for a in lookup.auth_ids(node) if a in nodes and a != node}
        waiting_on[node] = len(parents)
        for parent in parents:
            cited_by.setdefault(parent, []).append(node)

    def sort_key(node: str) -> tuple[int | float, int, str]:
        event = lookup.require(node, "event to order")
        return (-sender_power(node), origin_ts(event), node)

    heap = [(sort_key(n), n) for n, count in waiting_on.items() if count == 0]
    heapq.heapify(heap)
    ordered: list[str] = []
    while heap:
        _, node = heapq.heappop(heap)
        ordered.append(node)
        for child in cited_by.get(node, ()):
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                heapq.heappush(heap, (sort_key(child), child))
    if len(ordered) != len(nodes):
        raise StateResolutionError("the auth events of the events to order form a cycle")
    return ordered


class Mainline:
    """Mainline positions relative to the ``m.room.power_levels`` event *P₀*.

    The mainline of P₀ is [P₀, P₁, …, Pₙ], each Pᵢ₊₁ the power levels event among Pᵢ's
    ``auth_events``.  The *mainline position* of an event e is the index i of the first
    eⱼ (j ≥ 1) in its own chain of power levels auth events that is some Pᵢ, or ∞ if
    none is.  Positions of intermediate power levels events are memoised.
    """

    def __init__(self, power_levels_id: str | None, lookup: EventLookup) -> None:
        self._lookup = lookup
        self._index: dict[str, int] = {}
        current = power_levels_id
        while current is not None and current not in self._index:
            if lookup.get(current) is None:
                break
            self._index[current] = len(self._index)
            current = self._power_levels_auth_event(current)
        # For a power levels event p: index of the first mainline event in [p, p₁, …].
        self._memo: dict[str, int | float] = {}

    @property
    def event_ids(self) -> list[str]:
        return list(self._index)

    def _power_levels_auth_event(self, event_id: str) -> str | None:
        for auth_id in self._lookup.auth_ids(event_id):
            auth_event = self._lookup.get(auth_id)
            if (
                auth_event is not None
                and auth_event.is_state
                and auth_event.key == POWER_LEVELS_KEY
            ):
                return auth_id
        return None

    def position(self, event_id: str) -> int | float:
        path: list[str] = []
        visited: set[str] = set()
        current = self._power_levels_auth_event(event_id)
        result: int | float = INFINITY
        while current is not None and current not in visited:
            if current in self._index:
                result = self._index[current]
                break
            if current in self._memo:
                result = self._memo[current]
                break
            visited.add(current)
            path.append(current)
            current = self._power_levels_auth_event(current)
        for pl_id in path:
            self._memo[pl_id] = result
        return result


def mainline_ordering(
    event_ids: Iterable[str], power_levels_id: str | None, lookup: EventLookup
) -> list[str]:
    """Sort ``event_ids`` by the mainline ordering based on ``power_levels_id``.

    x < y if (1) x's mainline position is *greater* (based on an earlier mainline event),
    else (2) x's ``origin_server_ts`` is smaller, else (3) x's ``event_id`` is smaller.
    Without a power levels event every position is ∞.
    """
    ids = list(event_ids)
    if not ids:
        return []
    mainline = Mainline(power_levels_id, lookup)

    def sort_key(node: str) -> tuple[int | float, int, str]:
        event = lookup.require(node, "event to order")
        return (-mainline.position(node), origin_ts(event), node)

    return sorted(ids, key=sort_key)
