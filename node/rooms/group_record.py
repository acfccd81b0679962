"""One state group as kept in memory and written with its event's batch.

Its own module so that both the state store (which makes and reads groups) and the typed
event metadata (``node.rooms.event_meta``, which carries new groups to the persister) can
name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.events.model import StateKey

Delta = dict[StateKey, "str | None"]


@dataclass
class GroupRecord:
    """One state group: ``delta`` on top of ``prev`` (a full snapshot when ``prev`` is None)."""

    id: int
    room_id: str
    prev: int | None
    chain_len: int
    delta: Delta
    event_id: str | None = None
