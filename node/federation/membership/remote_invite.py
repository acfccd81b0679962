"""Inviting a user of another server into a room of ours.

Spec: server-server API "Inviting to a room": "when a user invites another user on a
different homeserver, a request to that homeserver to have the event signed and verified
must be made" (``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}`` with
``room_version``, the ``event`` and ``invite_room_state``: the room's state events that
help the invitee identify it -- full PDUs of the room's version including the create
event, v1.16); "Once the event has been signed by both the inviting homeserver and the
invited homeserver, it can be sent to all of the servers in the room".

The invite is built on the room's state (and refused early like a local invite), but
the room is not held locked during the remote call; afterwards it is checked again
against the room's current state and stored like a local event, so the outbound sender
delivers it to the room's servers.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.auth.rules import check_auth
from federation.errors import MatrixError
from federation.events.checks import has_valid_signature_from
from federation.events.model import Event
from federation.transport import endpoints as E
from node.rooms.event_meta import meta
from node.rooms.membership_checks import check_membership_change

from ..audience import check_audience
from ..roster_policy import refusal
from .common import MEMBER, domain_of
from .remote_calls import call

log = logging.getLogger("parta.federation.membership")

INVITE_STATE_TYPES = (
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.encryption",
)


async def invite_remote(
    ms: Any,
    sender: str,
    room_id: str,
    target: str,
    reason: str | None = None,
    *,
    is_direct: bool = False,
) -> Event | None:
    rooms = ms.rooms
    room = await rooms.room_for_sender(room_id)
    server = domain_of(target)
    if ms.policy is not None and not ms.policy.allow_outbound(server):
        raise refusal(ms.policy, server)
    check_audience(ms.policy, room.state, server, local_server=ms.server_name, what="be invited")
    content: dict = {"membership": "invite"}
    if reason:
        content["reason"] = reason
    if is_direct:
        # createRoom's ``is_direct``: the invitee's client files the room as a DM
        # (client-server API "Direct Messaging").
        content["is_direct"] = True
    async with room.lock:
        if not check_membership_change(room.state, room.room_version, sender, target, "invite"):
            return None  # already invited
        ev = rooms.build_and_check(room, sender, MEMBER, content, state_key=target)
        state = [dict(room.state[(t, "")].pdu) for t in INVITE_STATE_TYPES if (t, "") in room.state]
        sender_member = room.state.get((MEMBER, sender))
        if sender_member is not None:
            state.append(dict(sender_member.pdu))
    rv = room.room_version
    body = {"room_version": rv.identifier, "event": dict(ev.pdu), "invite_room_state": state}
    resp = await call(ms.client, server, E.INVITE, room_id, ev.event_id, body=body)
    signed = resp.get("event")
    if not isinstance(signed, dict):
        raise MatrixError(
            f"{server} returned no signed invite", errcode="M_UNKNOWN", http_status=502
        )
    signed = dict(signed)
    signed.pop("unsigned", None)
    try:
        returned = Event(signed, rv)
        same = returned.event_id == ev.event_id
    except Exception:  # noqa: BLE001 - any broken event is "changed": the 502 below
        same = False
    if not same:
        raise MatrixError(
            f"{server} changed the invite event", errcode="M_UNKNOWN", http_status=502
        )
    if ms.keyring is not None:
        await ms.keyring.ensure_event_keys([{**signed, "sender": target}])
        if not has_valid_signature_from(signed, rv, server, ms.keyring.event_key_lookup(signed)):
            raise MatrixError(
                f"{server} did not sign the invite", errcode="M_UNKNOWN", http_status=502
            )
    final = Event(signed, rv, event_id=ev.event_id)
    meta(final).unsigned = meta(ev).unsigned
    auth_map = dict(await rooms.get_events(final.auth_event_ids))
    async with room.lock:
        current = room.state.get((MEMBER, target))
        if current is not None and current.content.get("membership") == "invite":
            return None
        create = room.state.get(("m.room.create", ""))
        if create is not None:
            auth_map[create.event_id] = create
        check_auth(final, room.state, auth_events=auth_map)
        d = rooms.commit_local(room, final)
    await d
    log.info("event=remote_invite_sent room_id=%s invitee=%s", room_id, target)
    return final
