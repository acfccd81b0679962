"""``GET /_matrix/federation/v1/make_join/{roomId}/{userId}?ver=...`` as the resident server.

Spec: server-server API "Joining Rooms" (``joins-v1.yaml`` make_join): the answer is an
unsigned join template built on our current state, with ``room_version``; 400
``M_INCOMPATIBLE_ROOM_VERSION`` (with ``room_version``) when the room's version is not in
``ver`` (default ``["1"]``); 403 when the join would not be allowed; 404 for a room this
server is not in.  "Restricted rooms": when the user may join through a room membership,
the template names one of our users allowed to invite in
``join_authorised_via_users_server`` (the auth rule then needs our signature, added at
send_join).
"""

from __future__ import annotations

from typing import Any, Sequence

from node.rooms.membership_checks import check_membership_change
from node.rooms.membership_ops import restricted_join_authoriser

from ..audience import check_audience
from .common import incompatible_version, require_user_on, room_for_resident, template


async def make_join(
    ms: Any, origin: str, room_id: str, user_id: str, versions: Sequence[str]
) -> dict:
    require_user_on(user_id, origin)
    room = await room_for_resident(ms.rooms, room_id)
    check_audience(ms.policy, room.state, origin, local_server=ms.server_name)
    rv_id = room.room_version.identifier
    if rv_id not in (list(versions) or ["1"]):
        raise incompatible_version(rv_id)
    check_membership_change(room.state, room.room_version, user_id, user_id, "join")
    content: dict = {}
    via = await restricted_join_authoriser(ms.rooms, room, user_id)
    if via is not None:
        content["join_authorised_via_users_server"] = via
    return template(ms.rooms, room, user_id, "join", content)
