"""Building an event on top of a room held in memory and authorising it, with no side
effects: server-server API "PDUs" (``prev_events`` are the forward extremities, the depth
one more than theirs, the auth events selected from the current state,
https://spec.matrix.org/v1.16/server-server-api/#pdus) and the room version's
authorization rules, checked before anything is persisted.
"""

from __future__ import annotations

from federation.auth.rules import check_auth
from federation.auth.selection import auth_types_for_event
from federation.errors import BadJSON, MatrixError
from federation.events.builder import build_event, next_depth
from federation.events.model import Event
from federation.keys import SigningKey

from .event_meta import meta
from .state_cache import RoomState

CREATE = ("m.room.create", "")


def build_and_check(
    room: RoomState,
    *,
    server_name: str,
    signing_key: SigningKey,
    now_ms: int,
    sender: str,
    etype: str,
    content: dict,
    state_key: str | None = None,
    redacts: str | None = None,
) -> Event:
    """The signed PDU, auth-checked against ``room``'s current state.

    Raises ``AuthError`` (403 M_FORBIDDEN, with the failing rule) when not allowed, and
    413 M_TOO_LARGE past the 64 KiB PDU size limit.
    """
    rv = room.room_version
    state = room.state
    keys = auth_types_for_event(rv, etype, sender, state_key, content)
    auth_evs = [state[k] for k in keys if k in state]
    try:
        ev = build_event(
            rv,
            server_name=server_name,
            signing_key=signing_key,
            type=etype,
            sender=sender,
            content=content,
            room_id=room.room_id,
            prev_events=list(room.extremities),
            auth_events=[e.event_id for e in auth_evs],
            depth=next_depth(room.depth),
            origin_server_ts=now_ms,
            state_key=state_key,
            redacts=redacts,
        )
    except BadJSON as exc:
        if "the limit is" in exc.message:  # the 64 KiB PDU size limit
            raise MatrixError(
                "Event too large (the limit is 65536 bytes)",
                errcode="M_TOO_LARGE",
                http_status=413,
            ) from None
        raise
    auth_map = {e.event_id: e for e in auth_evs}
    create = state.get(CREATE)
    if create is not None:
        auth_map[create.event_id] = create
    check_auth(ev, state, auth_events=auth_map)
    if ev.is_state:
        prev = state.get(ev.key)
        if prev is not None:
            meta(ev).unsigned = {
                "replaces_state": prev.event_id,
                "prev_content": dict(prev.content),
                "prev_sender": prev.sender,
            }
    return ev
