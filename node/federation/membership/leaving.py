"""This server leaving a room it is not in: rejecting a remote invite, retracting a knock.

Spec: server-server API "Leaving Rooms (Rejecting Invites)": "Remote invites/knocks from
other homeservers do not involve the server in the graph and therefore need another
approach": make_leave against a resident ("the resident server may be the server which
sent the invite"), sign the template, send_leave (v2).  In a room where one of our users
is joined, leaving is a normal event (``RoomService.update_membership``) that the
outbound sender delivers.

When no resident can be reached, the invite is still rejected locally (a leave event
stored out of band) so the user is not stuck with it; the inviting server is not told.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import MatrixError
from federation.events.builder import build_event, next_depth
from federation.transport import endpoints as E

from .common import MEMBER, sign_template
from .out_of_band import store_out_of_band

log = logging.getLogger("parta.federation.membership")


async def leave_via(ms: Any, server: str, user_id: str, room_id: str, reason: str | None) -> Any:
    from .remote_calls import call

    resp = await call(ms.client, server, E.MAKE_LEAVE, room_id, user_id)
    ev = sign_template(ms, server, resp, room_id, user_id, "leave", reason)
    await call(ms.client, server, E.SEND_LEAVE, room_id, ev.event_id, body=dict(ev.pdu))
    return ev


async def leave_out_of_band(
    ms: Any, user_id: str, room_id: str, current: Any, candidates: list[str], reason: str | None
) -> None:
    """Reject the invite (or retract the knock) ``current`` of ``user_id``."""
    for server in candidates:
        try:
            ev = await leave_via(ms, server, user_id, room_id, reason)
        except MatrixError as exc:
            log.info(
                "event=remote_leave_attempt_failed room_id=%s via=%s error=%s %s",
                room_id,
                server,
                exc.errcode,
                exc.message,
            )
            continue
        ms.sender.skip_event(ev.event_id)
        await store_out_of_band(ms, ev, origin=server, record=False)
        return
    # Nobody reachable: reject locally only.
    rv = current.room_version
    content: dict = {"membership": "leave"}
    if reason:
        content["reason"] = reason
    ev = build_event(
        rv,
        server_name=ms.server_name,
        signing_key=ms.signing_key,
        type=MEMBER,
        sender=user_id,
        content=content,
        room_id=room_id,
        prev_events=[current.event_id],
        auth_events=[current.event_id],
        depth=next_depth(current.depth),
        origin_server_ts=ms.clock.time_ms(),
        state_key=user_id,
    )
    ms.sender.skip_event(ev.event_id)
    log.warning(
        "event=remote_leave_local_only room_id=%s user_id=%s tried=%s",
        room_id,
        user_id,
        ",".join(candidates) or "-",
    )
    await store_out_of_band(ms, ev, origin=ms.server_name, record=False)
