"""Shared bits of the read endpoints: the transaction envelope, auth chains (the paths are
in ``federation/transport/endpoints.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from federation.errors import NotFound
from federation.events.model import Event

if TYPE_CHECKING:
    from ..context import FederationContext


def envelope(fctx: FederationContext, pdus: list[dict]) -> dict:
    """A ``Transaction`` wrapping PDUs (``single_pdu_transaction`` / backfill)."""
    return {"origin": fctx.server_name, "origin_server_ts": fctx.ctx.clock.time_ms(), "pdus": pdus}


async def event_in_room(
    fctx: FederationContext, event_id: str, room_id: str | None = None
) -> Event:
    """A stored, not rejected event (of ``room_id``), else 404."""
    ev = await fctx.rooms.get_event(event_id) if isinstance(event_id, str) else None
    if (
        ev is None
        or ev.rejected_reason is not None
        or (room_id is not None and ev.room_id != room_id)
    ):
        raise NotFound(f"Could not find event {event_id}")
    return ev


async def auth_chain_events(
    fctx: FederationContext, event_ids: Iterable[str], room_id: str | None = None
) -> list[Event]:
    """Every event reachable from ``event_ids`` through ``auth_events`` (not the starting
    events themselves unless one is in another's chain), oldest first.

    Room version 12 never lists the create event in ``auth_events`` (the room ID names
    it), yet every event's authorisation needs it: for such rooms (``room_id`` given) it is
    added to the chain."""
    start = list(event_ids)
    if fctx.ingest is None:
        raise RuntimeError("the inbound pipeline is wired before the read endpoints")
    closure = await fctx.ingest.resolver.load_closure(start)
    seen: set[str] = set()
    stack = [a for eid in start if eid in closure for a in closure[eid].auth_event_ids]
    while stack:
        eid = stack.pop()
        if eid in seen or eid not in closure:
            continue
        seen.add(eid)
        stack.extend(closure[eid].auth_event_ids)
    if room_id is not None and room_id.startswith("!") and start:
        first = closure.get(start[0])
        if first is not None and first.room_version.event_format.room_id_is_create_event_hash:
            create_id = "$" + room_id[1:]
            if create_id not in seen:
                create = closure.get(create_id) or await fctx.rooms.get_event(create_id)
                if create is not None:
                    closure[create_id] = create
                    seen.add(create_id)
    return sorted((closure[e] for e in seen), key=lambda e: (e.depth, e.event_id))
