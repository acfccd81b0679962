"""Serialising PDUs in the client-server API's event format.

Spec: client-server API "Room Events" > ``ClientEvent`` / ``ClientEventWithoutRoomID``
(``data/api/client-server/definitions/client_event*.yaml``): ``content``, ``event_id``,
``origin_server_ts``, ``room_id``, ``sender``, ``state_key`` (state events only), ``type``
and ``unsigned`` {``age``, ``transaction_id`` (only for the device that sent it),
``redacted_because``, ``prev_content``, ``replaces_state``}.  Redactions carry ``redacts``
at the top level as well as (v11+) in ``content`` ("Redactions"; room_send.yaml).
"""

from __future__ import annotations

from typing import Any

from federation.events.model import Event

from .event_meta import meta


def format_client_event(
    event: Event,
    *,
    now_ms: int,
    include_room_id: bool = True,
    user_id: str | None = None,
    device_id: str | None = None,
) -> dict:
    """The client form of ``event``.

    ``user_id``/``device_id`` identify the requester: ``unsigned.transaction_id`` is only
    included when that device sent the event.
    """
    pdu = event.pdu
    out: dict[str, Any] = {
        "content": pdu.get("content", {}),
        "event_id": event.event_id,
        "origin_server_ts": pdu.get("origin_server_ts", 0),
        "sender": pdu["sender"],
        "type": pdu["type"],
    }
    if include_room_id:
        out["room_id"] = event.room_id
    if "state_key" in pdu:
        out["state_key"] = pdu["state_key"]
    if pdu["type"] == "m.room.redaction":
        redacts = event.redacts
        if redacts is not None:
            out["redacts"] = redacts

    unsigned: dict[str, Any] = {"age": max(0, now_ms - out["origin_server_ts"])}
    m = meta(event)
    extra = m.unsigned
    if extra:
        unsigned.update(extra)
    txn = m.txn
    if (
        txn is not None
        and user_id == pdu["sender"]
        and device_id is not None
        and txn[0] == device_id
    ):
        unsigned["transaction_id"] = txn[1]
    because = m.redacted_because
    if because is not None:
        unsigned["redacted_because"] = format_client_event(
            because, now_ms=now_ms, include_room_id=include_room_id
        )
    out["unsigned"] = unsigned
    return out


def strip_state_event(event: Event) -> dict:
    """Stripped state (client-server API "Stripped state"): for invites and hierarchy."""
    return {
        "content": event.content,
        "sender": event.sender,
        "state_key": event.state_key,
        "type": event.type,
    }
