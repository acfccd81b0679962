"""State resolution v2 and v2.1 as a pure function over event lookups.

Spec: ``content/rooms/fragments/v2-state-res.md`` (v2, room versions 2-11) and
``content/rooms/v12.md`` "State resolution" (v2.1, room version 12).

* ``resolve_state(room_version, state_sets, get_event)`` -> resolved state map
  (``v2.py``);
* ``auth_chain(event_ids, get_event)`` -> the union of the events' auth chains
  (``auth_chain.py``);
* ``StateResolutionError`` -- an essential event is missing or inconsistent.

Helpers: ``ordering.py`` (power events, reverse topological power ordering, mainline
ordering), ``iterative.py`` (iterative auth checks, sender power levels),
``lookup.py`` (per-call event cache).
"""

from .auth_chain import auth_chain
from .errors import StateResolutionError
from .v2 import resolve_state, separate

__all__ = ["resolve_state", "auth_chain", "separate", "StateResolutionError"]
