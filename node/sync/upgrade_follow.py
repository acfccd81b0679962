"""A user who follows a room upgrade keeps their tags (client-server API "Room Upgrades",
server behaviour: "When a user joins the new room, the server should automatically
transfer/replicate some of the user's personalized settings such as notifications, tags,
etc.").

When a local user joins a room whose ``m.room.create`` names a ``predecessor``, their
``m.tag`` room account data of the old room is copied to the new room, unless they
already tagged the new one.  The check per persisted event is a type comparison; the copy
runs off the persister's callback.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from twisted.internet import defer

from federation.events.model import Event

log = logging.getLogger("parta.sync.upgrade_follow")

CARRIED_OVER = ("m.tag",)


async def carry_over(service: Any, user_id: str, room_id: str) -> None:
    room = await service.rooms.get_room(room_id)
    predecessor = room.content("m.room.create").get("predecessor")
    old_room = predecessor.get("room_id") if isinstance(predecessor, dict) else None
    if not isinstance(old_room, str) or old_room == room_id:
        return
    for type_ in CARRIED_OVER:
        old = await service.account_data.get(user_id, old_room, type_)
        if old is None or await service.account_data.get(user_id, room_id, type_) is not None:
            continue
        await service.account_data.set(user_id, room_id, type_, old)


def attach(service: Any, rooms: Any, server_name: str) -> None:
    suffix = ":" + server_name

    def on_persisted(evs: Sequence[Event]) -> None:
        for ev in evs:
            if (
                ev.type == "m.room.member"
                and ev.content.get("membership") == "join"
                and ev.state_key is not None
                and ev.state_key.endswith(suffix)
            ):
                defer.ensureDeferred(carry_over(service, ev.state_key, ev.room_id)).addErrback(
                    lambda f: log.warning("event=upgrade_carry_over_failed error=%s", f.value)
                )

    rooms.persister.on_persisted.append(on_persisted)
