"""``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}``: this server is the invitee's.

Spec: server-server API "Inviting to a room" (``invites-v2.yaml``): M_INVALID_PARAM for an
invite that fails the signature check, is not an ``m.room.member`` invite, has a sender
not on the origin server or a state_key not on this server; 400
``M_INCOMPATIBLE_ROOM_VERSION`` for a room version we do not support; the answer is the
event with our signature added and nothing else changed.  ``invite_room_state`` (v1.16:
full PDUs of the room's version with the create event) is checked leniently -- entries
that fail (wrong room, bad signature) are dropped and logged rather than refusing the
invite, since older servers still send stripped state.

The invitee must be a user of this server that exists (404 ``M_NOT_FOUND``).  When none
of our users is in the room, the invite is stored out of band so the invitee's ``/sync``
shows it with the room state (``out_of_band.py``); otherwise it arrives through the
inviting server's transaction like any event of a room we are in.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import InvalidParam, MatrixError, NotFound
from federation.events.builder import sign_event
from federation.events.model import Event
from federation.room_versions import KNOWN_ROOM_VERSIONS

from .common import (
    check_submitted,
    domain_of,
    incompatible_version,
    local_members_joined,
    verify_pdu,
)
from .out_of_band import store_out_of_band, stripped

log = logging.getLogger("parta.federation.membership")


async def _room_state_entries(
    ms: Any, body: dict, rv: Any, room_id: str
) -> tuple[list, str | None]:
    entries = body.get("invite_room_state")
    if entries is None:
        return [], None
    if not isinstance(entries, list):
        raise InvalidParam("invite_room_state must be a list")
    out, creator = [], None
    for entry in entries[:100]:
        s = stripped(entry)
        if s is None:
            log.warning(
                "event=invite_room_state_entry_dropped room_id=%s reason=malformed", room_id
            )
            continue
        if isinstance(entry, dict) and "signatures" in entry:  # a full PDU (v1.16)
            try:
                pev = await verify_pdu(ms.keyring, entry, rv)
            except MatrixError as exc:
                log.warning(
                    "event=invite_room_state_entry_dropped room_id=%s type=%s reason=%s",
                    room_id,
                    s["type"],
                    exc.message,
                )
                continue
            if pev.room_id != room_id:
                log.warning(
                    "event=invite_room_state_entry_dropped room_id=%s type=%s reason=other_room",
                    room_id,
                    s["type"],
                )
                continue
        if s["type"] == "m.room.create" and s["state_key"] == "":
            creator = s["sender"]
        out.append(s)
    if creator is None:
        log.warning("event=invite_without_create room_id=%s", room_id)
    return out, creator


async def invite(ms: Any, origin: str, room_id: str, event_id: str, body: Any) -> dict:
    if not isinstance(body, dict):
        raise InvalidParam("Body must be a JSON object")
    rv_id = body.get("room_version")
    if not isinstance(rv_id, str):
        raise MatrixError("room_version is required", errcode="M_MISSING_PARAM")
    rv = KNOWN_ROOM_VERSIONS.get(rv_id)
    if rv is None:
        raise incompatible_version(rv_id)
    pdu = body.get("event")
    ev = await check_submitted(
        ms.keyring,
        pdu,
        rv,
        origin=origin,
        room_id=room_id,
        event_id=event_id,
        membership="invite",
        state_key_is_sender=False,
    )
    target = ev.state_key
    if domain_of(target or "") != ms.server_name:
        raise InvalidParam("The invited user is not a user of this server")
    if ms.accounts is not None and not await ms.accounts.user_exists(target):
        raise NotFound(f"User {target} does not exist")
    room_state, creator = await _room_state_entries(ms, body, rv, room_id)

    signed = dict(ev.pdu)
    signed["signatures"] = {k: dict(v) for k, v in (ev.pdu.get("signatures") or {}).items()}
    sign_event(signed, rv, ms.server_name, ms.signing_key)

    participating = False
    try:
        room = await ms.rooms.get_room(room_id)
        participating = ("m.room.create", "") in room.state and local_members_joined(
            room, ms.server_name
        )
    except NotFound:
        pass
    if not participating:
        stored = Event(dict(signed), rv, event_id=ev.event_id)
        await store_out_of_band(
            ms, stored, origin=origin, stripped_state=room_state, creator=creator
        )
    log.info(
        "event=remote_invite_received room_id=%s invitee=%s origin=%s stored=%s",
        room_id,
        target,
        origin,
        not participating,
    )
    if isinstance(pdu, dict) and "unsigned" in pdu:
        signed["unsigned"] = pdu["unsigned"]
    return {"event": signed}
