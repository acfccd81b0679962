"""``PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}`` as the resident server.

Spec: server-server API "Joining Rooms" (``joins-v2.yaml``): M_INVALID_PARAM for a join
that fails the signature check, is not an ``m.room.member`` join, has a sender not on the
origin server, or a state_key other than the sender; the 200 answer carries ``state``
(the resolved room state before the join), ``auth_chain`` (every event in the auth chains
of the join and of the state), ``event`` (the join with our signature) and
``members_omitted`` (false: ``omit_members`` is accepted but the full state is sent,
which the spec allows) with ``servers_in_room``.
"""

from __future__ import annotations

from typing import Any

from .common import auth_chain_pdus, domain_of
from .resident import accept_membership


async def send_join(ms: Any, origin: str, room_id: str, event_id: str, body: Any) -> dict:
    room, ev = await accept_membership(ms, origin, room_id, event_id, body, "join")
    state_ids = await ms.state_store.get_state_ids_before(ev.event_id)
    state_evs = await ms.rooms.get_events(list(state_ids.values()))
    state = [dict(state_evs[i].pdu) for i in state_ids.values() if i in state_evs]
    chain = await auth_chain_pdus(ms.rooms, [ev.event_id, *state_evs])
    create = room.state.get(("m.room.create", ""))
    if (
        create is not None
        and room.room_version.event_format.room_id_is_create_event_hash
        and all(p.get("type") != "m.room.create" for p in chain)
    ):
        # v12: the create event is in no event's auth_events, yet every auth check of
        # the room starts from it.
        chain.insert(0, dict(create.pdu))
    servers = {
        domain_of(k[1])
        for k, eid in state_ids.items()
        if k[0] == "m.room.member"
        and eid in state_evs
        and state_evs[eid].content.get("membership") == "join"
    }
    return {
        "state": state,
        "auth_chain": chain,
        "event": dict(ev.pdu),
        "members_omitted": False,
        "servers_in_room": sorted(servers),
    }
