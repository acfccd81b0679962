"""Auth chains, the auth difference and the conflicted state subgraph.

Spec: ``content/rooms/fragments/v2-state-res.md`` "Definitions" -> *Auth chain*, *Auth
difference*; ``content/rooms/v12.md`` "State resolution" -> *Conflicted state subgraph*
(added for v2.1).

All walks follow ``auth_events`` edges through an ``EventLookup``; events that cannot be
looked up are skipped (they are not part of any chain we can compute).  Walks are
iterative (no recursion limit) and visit each event once, so a room of a few thousand
events costs a few thousand cached lookups per walk.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from ..events.model import Event
from .lookup import EventLookup


def auth_chain(
    event_ids: Iterable[str], get_event: Callable[[str], Event | None] | EventLookup
) -> set[str]:
    """The union of the auth chains of ``event_ids``.

    The auth chain of *E* is every event reachable from *E* through ``auth_events`` --
    *E* itself is not part of it (but a given event is included when it is in the chain
    of another given event).  Events ``get_event`` does not know are left out, and the
    walk does not continue past them.
    """
    lookup = get_event if isinstance(get_event, EventLookup) else EventLookup(get_event)
    return ancestors(event_ids, lookup)


def ancestors(
    event_ids: Iterable[str], lookup: EventLookup, stop: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    """Events reachable from ``event_ids`` via one or more ``auth_events`` edges.

    Events in ``stop`` are neither included nor walked past (used when ``stop`` is
    already known to be closed under ``auth_events``).
    """
    seen: set[str] = set()
    stack = list(event_ids)
    while stack:
        current = stack.pop()
        for auth_id in lookup.auth_ids(current):
            if auth_id in seen or auth_id in stop:
                continue
            if lookup.get(auth_id) is None:
                continue
            seen.add(auth_id)
            stack.append(auth_id)
    return seen


def auth_difference(state_sets: Sequence[set[str]], lookup: EventLookup) -> set[str]:
    """∪ Cᵢ − ∩ Cᵢ where Cᵢ is the full auth chain of the events of state set i.

    Each Cᵢ here contains the events of state set i themselves as well as their auth
    chains, as the deployed implementations compute it: an event present in every state
    set (an unconflicted one) is then never part of the difference.  (With chains that
    leave the state events out, an unconflicted event cited by one side only would be
    replayed although all sides agree on it.)  Conflicted events are in the full
    conflicted set either way, so only this corner differs.

    Events common to every state set, and everything in their chains, lie in every Cᵢ;
    they are computed once and each set's own walk stops there.
    """
    if not state_sets:
        return set()
    common = set(state_sets[0]).intersection(*state_sets[1:])
    base = ancestors(common, lookup) | common
    own_chains: list[set[str]] = []
    for state_ids in state_sets:
        own = {e for e in state_ids if e not in base}
        own_chains.append(own | ancestors(own, lookup, stop=base))
    return set().union(*own_chains) - set(own_chains[0]).intersection(*own_chains[1:])


def conflicted_subgraph(conflicted: set[str], lookup: EventLookup) -> set[str]:
    """v2.1: every event on an ``auth_events`` path between two conflicted events.

    Spec (v12 "Conflicted state subgraph"): the union of all paths, following
    ``auth_events`` from one event of the conflicted state set to another, endpoints
    included.  An event X is on such a path iff X is reachable from a conflicted event
    and a conflicted event is reachable from X (X itself counts).  One depth-first walk
    from the conflicted events computes, for every event it reaches, whether it leads
    back into the conflicted set.  The conflicted events themselves are returned too.
    """
    # leads[x]: x is conflicted, or some auth event of x leads to a conflicted event.
    leads: dict[str, bool] = {}
    expanded: set[str] = set()
    for root in sorted(conflicted):
        if root in leads:
            continue
        stack = [root]
        while stack:
            node = stack[-1]
            if node in leads:
                stack.pop()
                continue
            if node not in expanded:
                expanded.add(node)
                pending = [
                    a
                    for a in lookup.auth_ids(node)
                    if a not in leads and a not in expanded and lookup.get(a) is not None
                ]
                if pending:
                    stack.extend(pending)
                    continue
            # All auth events are decided (or on the stack: only possible in a cycle).
            leads[node] = node in conflicted or any(
                leads.get(a, False) for a in lookup.auth_ids(node)
            )
            stack.pop()
    return {node for node, ok in leads.items() if ok}
