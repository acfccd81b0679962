"""Knocking: ``make_knock`` / ``send_knock`` as the resident server, and knocking on a room
this server is not in.

Spec: server-server API "Knocking upon a room" (``knocks.yaml``): make_knock needs ``ver``
(400 ``M_INCOMPATIBLE_ROOM_VERSION`` when the room's version is not listed), 403 when the
user may not knock, 404 for an unknown room; send_knock validates like send_join with
membership ``knock`` and answers ``knock_room_state`` (stripped state events of the room,
client format, to show the knocking user); the handshake is the join handshake with
``knock`` instead of ``join``.  Client-server API ``knocking.yaml``
(``POST /knock/{roomIdOrAlias}`` with ``via``/``server_name`` and ``reason``).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from federation.errors import MatrixError
from federation.transport import endpoints as E
from node.rooms.client_format import strip_state_event
from node.rooms.membership_checks import check_membership_change

from ..audience import check_audience
from .common import (
    SUPPORTED_VERSIONS,
    incompatible_version,
    require_user_on,
    room_for_resident,
    sign_template,
    template,
)
from .out_of_band import store_out_of_band
from .remote_calls import call
from .resident import accept_membership

log = logging.getLogger("parta.federation.membership")

KNOCK_STATE_TYPES = (
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.encryption",
)


async def make_knock(
    ms: Any, origin: str, room_id: str, user_id: str, versions: Sequence[str]
) -> dict:
    require_user_on(user_id, origin)
    room = await room_for_resident(ms.rooms, room_id)
    check_audience(ms.policy, room.state, origin, local_server=ms.server_name, what="knock")
    rv_id = room.room_version.identifier
    if rv_id not in list(versions):
        raise incompatible_version(rv_id)
    check_membership_change(room.state, room.room_version, user_id, user_id, "knock")
    return template(ms.rooms, room, user_id, "knock")


async def send_knock(ms: Any, origin: str, room_id: str, event_id: str, body: Any) -> dict:
    room, _ev = await accept_membership(ms, origin, room_id, event_id, body, "knock")
    state = [
        strip_state_event(room.state[(t, "")]) for t in KNOCK_STATE_TYPES if (t, "") in room.state
    ]
    return {"knock_room_state": state}


async def knock_remote(
    ms: Any, user_id: str, room_id: str, candidates: list[str], reason: str | None
) -> str:
    """Knock through the first candidate that completes make_knock/send_knock."""
    last: MatrixError | None = None
    for server in candidates:
        try:
            resp = await call(
                ms.client, server, E.MAKE_KNOCK, room_id, user_id, query={"ver": SUPPORTED_VERSIONS}
            )
            ev = sign_template(ms, server, resp, room_id, user_id, "knock", reason)
            ms.sender.skip_event(ev.event_id)
            answer = await call(
                ms.client, server, E.SEND_KNOCK, room_id, ev.event_id, body=dict(ev.pdu)
            )
        except MatrixError as exc:
            log.info(
                "event=remote_knock_attempt_failed room_id=%s via=%s error=%s %s",
                room_id,
                server,
                exc.errcode,
                exc.message,
            )
            last = exc
            continue
        state = [
            s
            for s in answer.get("knock_room_state") or []
            if isinstance(s, dict) and isinstance(s.get("type"), str)
        ]
        creator = next((s.get("sender") for s in state if s.get("type") == "m.room.create"), None)
        await store_out_of_band(ms, ev, origin=server, stripped_state=state, creator=creator)
        return room_id
    if last is None:
        raise MatrixError(
            "No known servers to knock through (use 'via')", errcode="M_NOT_FOUND", http_status=404
        )
    raise last
