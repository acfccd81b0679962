"""City-wide rooms hosted on the gateway (city services), created on the first run.

- Announcements (``#announcements:<gateway>``): public, listed in the room directory,
  read-only for everyone but the city office: ``events_default`` 50, office accounts 100
  (in room version 12 the creating office account is a room creator, above any level).
- Directors (``#directors:<gateway>``): invite-only; enrolled schools' directors are invited
  over federation (``gateway/directory/directors.py``).

Idempotent: a room whose alias already exists is not created again, so every start may
call ``ensure_city_rooms``.  The rooms are created by the office admin account of the
gateway config (``gateway.admin_localpart``), made by ``parta gateway init``.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import NotFound
from federation.room_versions import get_room_version

log = logging.getLogger("parta.gateway")

READ_ONLY_LEVEL = 50  # events_default of the announcements room
OFFICE_LEVEL = 100


def room_specs(gw_config: Any) -> list[tuple[str, dict]]:
    """(alias localpart, createRoom body without power levels) per city room."""
    return [
        (
            gw_config.announcements_alias,
            {
                "preset": "public_chat",
                "visibility": "public",
                "name": "City announcements",
                "topic": "Announcements from the city office to every school (read-only)",
            },
        ),
        (
            gw_config.directors_alias,
            {
                "preset": "private_chat",
                "visibility": "private",
                "name": "School directors",
                "topic": "School directors and the city office",
            },
        ),
    ]


def power_levels(
    alias_local: str,
    gw_config: Any,
    creator: str,
    office_users: list[str],
    privileged_creators: bool,
) -> dict:
    users = {u: OFFICE_LEVEL for u in office_users if u != creator}
    if not privileged_creators:  # rooms before v12: the creator needs an explicit 100
        users[creator] = OFFICE_LEVEL
    override: dict[str, Any] = {"users": users}
    if alias_local == gw_config.announcements_alias:
        override["events_default"] = READ_ONLY_LEVEL
    return override


async def ensure_city_rooms(
    *, rooms: Any, accounts: Any, config: Any, gw_config: Any
) -> dict[str, str]:
    """Create the missing city rooms; returns alias -> room ID for all of them."""
    from node.rooms.aliases_ops import get_alias

    server = config.server_name
    creator = accounts.user_id_for(gw_config.admin_localpart)
    if not await accounts.user_exists(creator):
        log.warning("event=city_rooms_skipped reason=no_admin user_id=%s", creator)
        return {}
    office = [
        u["user_id"]
        for u in await accounts.list_users()
        if u.get("role") == "office" and not u.get("deactivated")
    ]
    privileged = get_room_version(config.default_room_version).auth.privileged_creators
    out: dict[str, str] = {}
    for local, body in room_specs(gw_config):
        alias = f"#{local}:{server}"
        try:
            out[alias] = (await get_alias(rooms, alias))["room_id"]
            continue
        except NotFound:
            pass
        full = dict(
            body,
            room_alias_name=local,
            power_level_content_override=power_levels(
                local, gw_config, creator, office, privileged
            ),
        )
        room_id = await rooms.create_room(creator, full)
        log.info("event=city_room_created alias=%s room_id=%s", alias, room_id)
        out[alias] = room_id
    return out
