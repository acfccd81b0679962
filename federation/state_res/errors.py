"""Errors raised by state resolution.

Spec: ``content/rooms/fragments/v2-state-res.md`` (the algorithm assumes every event it
works on can be looked up; this module names the failure when an essential one cannot).
"""

from __future__ import annotations


class StateResolutionError(Exception):
    """State resolution cannot proceed: an essential event is missing or inconsistent.

    Raised when a conflicted state event (or, for room version 12, the room's create
    event) cannot be looked up, when an event belongs to another room, when a state set
    maps a key to an event with a different key, or when the auth graph has a cycle.
    Missing events that are merely *reachable* through ``auth_events`` are skipped.
    """
