"""Shared pieces of the inbound PDU pipeline (server-server API "Checks performed on
receipt of a PDU"): the logger, limits, the outcome counter and small PDU helpers used by
every stage."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from federation.events.model import Event

from .. import fed_metrics

if TYPE_CHECKING:
    from federation.room_versions import RoomVersion
    from node.rooms.state_store import StateMap

log = logging.getLogger("parta.federation.ingest")

MAX_STATE_FETCHES = 3  # prev events whose state we ask for, per PDU
_NONE = object()  # "looked up: not stored"
STORE_FAILED = "Internal error while storing the event"  # a PDU result


def _depth(pdu: Any) -> int:
    d = pdu.get("depth") if isinstance(pdu, dict) else None
    return d if isinstance(d, int) and not isinstance(d, bool) else 0


def _domain(user_id: Any) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return user_id.split(":", 1)[1]
    return None


# "Is this event signed by that server?" (``pdu_checks.signature_checker`` over the key
# ring), which some auth rules ask.
SignedBy = Callable[[Event, str], bool]


class EventSource(Protocol):
    """The part of the rooms service that looks events up (its cache, then the DB)."""

    async def get_events(self, event_ids: Any) -> dict[str, Event]: ...


class Outcomes:
    """What happened to received PDUs: ``stats`` (for tests and the CLI) and the
    ``parta_federation_pdus_total`` metric, one count per PDU."""

    def __init__(self) -> None:
        self.stats = {"accepted": 0, "rejected": 0, "soft_failed": 0, "dropped": 0}

    def count(self, outcome: str) -> None:
        self.stats[outcome] += 1
        fed_metrics.pdu(outcome)


def state_map(rv: RoomVersion, state_pdus: Sequence[dict], pool: Mapping[str, Event]) -> StateMap:
    """The state map (key -> event ID) of a ``/state`` or ``send_join`` answer: the valid,
    not rejected state events of ``state_pdus`` among the checked events ``pool``."""
    out: StateMap = {}
    for pdu in state_pdus:
        try:
            eid = Event(pdu, rv).event_id
        except Exception:  # noqa: BLE001 - a malformed state PDU is left out
            continue
        ev = pool.get(eid)
        if ev is not None and ev.is_state and ev.rejected_reason is None:
            out[ev.key] = ev.event_id
    return out


async def state_events(
    rooms: EventSource, ids: Mapping[tuple[str, str], str], keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Event]:
    """The events of ``ids`` (a state map) under ``keys``, those that can be loaded."""
    wanted = {k: ids[k] for k in keys if k in ids}
    evs = await rooms.get_events(wanted.values())
    return {k: evs[eid] for k, eid in wanted.items() if eid in evs}
