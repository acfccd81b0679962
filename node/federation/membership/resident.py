"""Accepting a membership event submitted by another server (send_join, send_leave,
send_knock) as the resident server.

Spec: server-server API "Joining Rooms" ("The resident homeserver then adds its signature
to this event and accepts it into the room's event graph ... The resident server must
also send the event to other servers participating in the room"), "Leaving Rooms",
"Knocking upon a room", "Restricted rooms" (a join naming one of our users in
``join_authorised_via_users_server`` gets our signature before it is checked or stored).

The event goes through the inbound pipeline (``ingest.receive_pdus``: signatures, auth
against its auth events, the state before it and the current state), then must be part
of the room's current state -- an event that was refused or soft-failed is a 403.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import Forbidden
from federation.events.builder import sign_event
from federation.events.model import Event

from ..audience import check_audience
from .common import MEMBER, check_submitted, domain_of, room_for_resident

log = logging.getLogger("parta.federation.membership")


async def accept_membership(
    ms: Any, origin: str, room_id: str, event_id: str, pdu: Any, membership: str
) -> tuple[Any, Event]:
    """Check, countersign if needed, ingest and forward; returns (room, event)."""
    room = await room_for_resident(ms.rooms, room_id)
    if membership in ("join", "knock"):
        check_audience(ms.policy, room.state, origin, local_server=ms.server_name, what=membership)
    rv = room.room_version
    if isinstance(pdu, dict):
        pdu = dict(pdu)
        pdu.pop("unsigned", None)
        via = (
            (pdu.get("content") or {}).get("join_authorised_via_users_server")
            if isinstance(pdu.get("content"), dict)
            else None
        )
        if membership == "join" and isinstance(via, str) and domain_of(via) == ms.server_name:
            sign_event(pdu, rv, ms.server_name, ms.signing_key)
    ev = await check_submitted(
        ms.keyring,
        pdu,
        rv,
        origin=origin,
        room_id=room_id,
        event_id=event_id,
        membership=membership,
    )
    current = room.state.get((MEMBER, ev.state_key))
    if current is None or current.event_id != ev.event_id:
        results = await ms.ingest.receive_pdus(origin, [dict(ev.pdu)])
        result = results.get(ev.event_id) or {}
        if result.get("error"):
            raise Forbidden(f"The {membership} event was refused: {result['error']}")
        room = await ms.rooms.get_room(room_id)
        current = room.state.get((MEMBER, ev.state_key))
        if current is None or current.event_id != ev.event_id:
            raise Forbidden(
                f"The {membership} event was not accepted into the room's current state"
            )
    stored = await ms.rooms.get_event(ev.event_id) or current
    try:
        await ms.sender.send_event_to_room(stored, exclude={origin})
    except Exception:  # the join is in; fan-out retries on its own
        log.exception("event=membership_forward_failed event_id=%s", ev.event_id)
    return room, stored
