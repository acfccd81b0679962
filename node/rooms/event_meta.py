"""What the node knows about an event beyond its PDU: typed, one field per fact.

The protocol core's ``Event`` (``federation/events/model.py``) may not import ``node/``, so
it keeps one generic ``meta`` slot; the node fills it with an ``EventMeta`` and reads it
only through ``meta(ev)``, which creates it on first use.  Events that never need it (most
events checked on receipt and then dropped, the events of an auth chain) cost no object;
the others cost one slotted object instead of a dict.

Every default is what a missing fact meant before: ``None`` for "not known / not set",
``False`` for the flags, ``()`` for "no new state groups".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from federation.events.model import Event, StateKey

from .group_record import GroupRecord


@dataclass(slots=True, eq=False)
class EventMeta:
    """The node's bookkeeping for one event; never part of the PDU nor sent anywhere."""

    # --- as stored / served ----------------------------------------------------------
    # Position in the node's event stream: set by the persister when the event is
    # written (below zero for backfilled history), None while uncommitted.
    stream_ordering: int | None = None
    # Extra ``unsigned`` keys served to clients: replaces_state, prev_content, prev_sender.
    unsigned: dict[str, Any] | None = None
    # (device ID, transaction ID) of a local send, for ``unsigned.transaction_id``.
    txn: tuple[str, str] | None = None
    # The event ID of the redaction that redacted it, and (when served) that redaction.
    redacted_by: str | None = None
    redacted_because: Event | None = None

    # --- flags ---------------------------------------------------------------------
    # Stored without known state (received outside the room's graph, or soft-failed).
    outlier: bool = False
    soft_failed: bool = False
    # Older history fetched with /backfill: below every stream ordering, not "new".
    backfilled: bool = False
    # Held as an outlier before and now received with its state: the outlier row goes.
    replaces_outlier: bool = False

    # --- carried to the persister with the event ---------------------------------------
    # The ``rooms`` row of a room's first event (room creation, or a room joined remotely).
    new_room: dict[str, Any] | None = None
    # State groups: (before, after), the groups made for it, (room ID, new current group).
    sg: tuple[int, int] | None = None
    sg_new: Sequence[GroupRecord] = ()
    sg_current: tuple[str, int] | None = None
    # A received event's change of the room's current state, after state resolution
    # (None: "a state event replaces its key", the local rule).
    current_state_delta: dict[StateKey, Event | None] | None = None
    # The room's forward extremities once the event is applied (None: derive them).
    extremities_after: tuple[str, ...] | None = None
    # A redaction's target event ID, marked redacted when the redaction is written.
    redacts_target: str | None = None
    # (JSON text, unsigned JSON text) encoded by ``store_write.check_storable``.
    row_json: tuple[str, str | None] | None = None


def meta(ev: Event) -> EventMeta:
    """The node's metadata of ``ev``, created empty on first use."""
    m = ev.meta
    if m is None:
        new = EventMeta()
        ev.meta = new
        return new
    return m  # type: ignore[return-value]  # only node/ fills the slot, always with EventMeta


def committed_stream(ev: Event) -> int:
    """The stream ordering of an event read from or written to the database; a
    ``KeyError`` for an uncommitted one (a caller's bug, as an absent key was before)."""
    so = meta(ev).stream_ordering
    if so is None:
        raise KeyError(f"{ev.event_id} has no stream ordering")
    return so
