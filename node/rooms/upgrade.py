"""Room upgrades (client-server API "Room Upgrades", ``room_upgrades.yaml``), the server
behaviour the module lists, in order:

1. the user must be joined and allowed to send ``m.room.tombstone`` in the old room
   (403 ``M_FORBIDDEN`` otherwise, before anything is created);
2. a replacement room of ``new_version`` (400 ``M_UNSUPPORTED_ROOM_VERSION`` for a
   version this server does not know) whose ``m.room.create`` names the old room as
   ``predecessor`` (with the old room's last event ID, which room version 12 lets us
   leave out) and copies its ``type``; the upgrader is the creator, plus the
   ``additional_creators`` of the request when the new version has privileged creators
   (never copied from the old room, as the spec says);
3. the transferable state (``TRANSFERRED``) copied, and the old power levels: in room
   version 12 and later the creators have infinite power and are taken out of ``users``
   (authorization rule 10.4 forbids them there); before that, the upgrader is first given
   the highest level the old power levels name, so every copied event passes the
   authorization rules, and the old power levels are restored right after;
4. the local aliases moved to the new room (and the canonical alias with them, taken out
   of the old room), and a published room directory entry moved;
5. ``m.room.tombstone`` in the old room, pointing at the new one;
6. the old room's ``events_default`` and ``invite`` raised to ``max(50, users_default +
   1)`` so ordinary members stop talking and inviting there (best effort).

Members are not moved (the spec: servers cannot impersonate other servers' users); they
follow with a join of the tombstone's ``replacement_room``.  The replacement of a room that
is not public would refuse that join, so its joined members are invited to it first (by the
upgrader, over federation for other servers' users).  Two upgrades of the same room
at once give one replacement room: the second caller waits for the first's answer.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from twisted.internet import defer

from federation.auth.power_levels import (
    as_int,
    event_send_level,
    get_power_levels_content,
    user_power_level,
)
from federation.errors import BadJSON, Forbidden, InvalidParam, MatrixError
from federation.identifiers import is_valid_user_id
from federation.room_versions import get_room_version
from schema.rooms import room_aliases

from . import store
from .state_cache import RoomState

log = logging.getLogger("parta.rooms.upgrade")

TOMBSTONE = "m.room.tombstone"
POWER_LEVELS = "m.room.power_levels"
CANONICAL_ALIAS = "m.room.canonical_alias"
TRANSFERRED = (
    "m.room.server_acl",
    "m.room.encryption",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.guest_access",
    "m.room.history_visibility",
    "m.room.join_rules",
)
MAX_ADDITIONAL_CREATORS = 100

_in_progress: dict[str, list[defer.Deferred]] = {}


# Joined members of a non-public room invited to its replacement: a school room is at most a
# few thousand people; the rest may still join by knocking or a new invite.
MAX_FOLLOW_INVITES = 5_000


def parse_upgrade_body(body: dict) -> tuple[str, list[str]]:
    """(new_version, additional_creators) of a ``/upgrade`` request body."""
    version = body.get("new_version")
    if version is None:
        raise MatrixError("Missing 'new_version'", errcode="M_MISSING_PARAM")
    if not isinstance(version, str):
        raise BadJSON("'new_version' must be a string")
    extra = body.get("additional_creators", [])
    if not isinstance(extra, list) or not all(is_valid_user_id(u) for u in extra):
        raise InvalidParam("'additional_creators' must be a list of user IDs")
    if len(extra) > MAX_ADDITIONAL_CREATORS:
        raise InvalidParam(f"At most {MAX_ADDITIONAL_CREATORS} additional creators")
    return version, list(dict.fromkeys(extra))


def check_may_upgrade(room: RoomState, user_id: str) -> None:
    if room.membership(user_id) != "join":
        raise Forbidden("You cannot upgrade this room")
    level = user_power_level(user_id, room.state, room.room_version)
    if level < event_send_level(TOMBSTONE, True, room.state):
        raise Forbidden("You cannot upgrade this room")


def _highest_level(content: dict) -> int:
    levels = [100]
    for key, value in content.items():
        if isinstance(value, dict):
            levels.extend(v for v in map(as_int, value.values()) if v is not None)
        elif (v := as_int(value)) is not None and key != "notifications":
            levels.append(v)
    return max(levels)


def plan_power_levels(
    old: RoomState, user_id: str, creators: set[str], privileged: bool
) -> tuple[dict, dict | None]:
    """(power levels the new room starts with, the ones to restore after, or None)."""
    final = get_power_levels_content(old.state)
    users = dict(final.get("users") or {}) if isinstance(final.get("users"), dict) else {}
    if old.room_version.auth.privileged_creators and not privileged:
        # The old creators' infinite power has no equivalent: the upgrader keeps the top.
        users[user_id] = max(as_int(users.get(user_id)) or 0, 100)
    if privileged:
        for creator in creators:
            users.pop(creator, None)
        final["users"] = users
        return final, None
    final["users"] = users
    start = dict(final)
    start["users"] = {**users, user_id: _highest_level(final)}
    return start, final


def restricted_old_levels(content: dict) -> dict | None:
    """Step 6: the old room's power levels with talking and inviting raised, or None."""
    users_default = as_int(content.get("users_default")) or 0
    floor = max(50, users_default + 1)
    out = dict(content)
    changed = False
    for key, default in (("events_default", 0), ("invite", 0)):
        current = as_int(content.get(key))
        if (default if current is None else current) < floor:
            out[key] = floor
            changed = True
    return out if changed else None


async def upgrade_room(service: Any, user_id: str, room_id: str, body: dict) -> str:
    version, extra = parse_upgrade_body(body)
    waiting = _in_progress.get(room_id)
    if waiting is not None:
        d: defer.Deferred = defer.Deferred()
        waiting.append(d)
        return await d
    _in_progress[room_id] = waiting = []
    try:
        new_room_id = await _upgrade(service, user_id, room_id, version, extra)
    except Exception as exc:
        for d in _in_progress.pop(room_id, []):
            d.errback(exc)
        raise
    for d in _in_progress.pop(room_id, []):
        d.callback(new_room_id)
    return new_room_id


async def _upgrade(service: Any, user_id: str, room_id: str, version: str, extra: list) -> str:
    new_version = get_room_version(version)  # 400 M_UNSUPPORTED_ROOM_VERSION
    old = await service.get_room(room_id)
    check_may_upgrade(old, user_id)
    privileged = new_version.auth.privileged_creators

    creation: dict[str, Any] = {"predecessor": {"room_id": room_id}}
    if not privileged and old.extremities:
        creation["predecessor"]["event_id"] = old.extremities[-1]
    if old.room_type is not None:
        creation["type"] = old.room_type
    creators = {user_id}
    if privileged and extra:
        creation["additional_creators"] = [u for u in extra if u != user_id]
        creators.update(extra)
    start_levels, final_levels = plan_power_levels(old, user_id, creators, privileged)
    initial = [{"type": POWER_LEVELS, "state_key": "", "content": start_levels}]
    for etype in TRANSFERRED:
        ev = old.get(etype)
        if ev is not None:
            initial.append({"type": etype, "state_key": "", "content": dict(ev.content)})
    join_rule = old.content("m.room.join_rules").get("join_rule")
    new_room_id = await service.create_room(
        user_id,
        {
            "room_version": new_version.identifier,
            "creation_content": creation,
            "initial_state": initial,
            "preset": "public_chat" if join_rule == "public" else "private_chat",
        },
    )
    if join_rule != "public":
        await _invite_members(service, user_id, old, new_room_id)
    if final_levels is not None:
        await service.send_event(user_id, new_room_id, POWER_LEVELS, final_levels, "")
    await _move_aliases(service, user_id, old, new_room_id)
    await service.send_event(
        user_id,
        room_id,
        TOMBSTONE,
        {"body": "This room has been replaced", "replacement_room": new_room_id},
        "",
    )
    restricted = restricted_old_levels(get_power_levels_content(old.state))
    if restricted is not None:
        try:
            await service.send_event(user_id, room_id, POWER_LEVELS, restricted, "")
        except MatrixError as exc:  # e.g. the upgrader may not change power levels
            log.info("event=upgrade_old_room_not_restricted room_id=%s reason=%s", room_id, exc)
    log.info("event=room_upgraded room_id=%s new_room_id=%s by=%s", room_id, new_room_id, user_id)
    return new_room_id


async def _invite_members(service: Any, user_id: str, old: RoomState, new_room_id: str) -> None:
    """Members follow: a room anyone may join needs nothing, but the replacement of an
    invite-only (or knock, restricted) room would shut its members out, since membership
    is not transferred (step 3).  So its joined members are invited to the new room, while
    the upgrader still holds the raised power levels; a failed invite (e.g. a server that
    cannot be reached) is logged and the others still go out."""
    members = [
        uid
        for uid, ev in old.members()
        if uid != user_id and ev.content.get("membership") == "join"
    ]
    fed = service.hooks.membership
    for target in members[:MAX_FOLLOW_INVITES]:
        try:
            if fed is not None:
                await fed.invite_user(user_id, new_room_id, target, None)
            else:
                await service.update_membership(user_id, new_room_id, target, "invite", None)
        except MatrixError as exc:
            log.info(
                "event=upgrade_invite_failed room_id=%s user_id=%s reason=%s",
                new_room_id,
                target,
                exc,
            )
    if len(members) > MAX_FOLLOW_INVITES:
        log.warning(
            "event=upgrade_invites_capped room_id=%s members=%d invited=%d",
            new_room_id,
            len(members),
            MAX_FOLLOW_INVITES,
        )


def _move_alias_rows(conn: Any, old_room_id: str, new_room_id: str) -> None:
    conn.execute(
        update(room_aliases)
        .where(room_aliases.c.room_id == old_room_id)
        .values(room_id=new_room_id)
    )


async def _move_aliases(service: Any, user_id: str, old: RoomState, new_room_id: str) -> None:
    """Step 4: local aliases, the canonical alias and a directory entry."""
    await service.db.run(_move_alias_rows, old.room_id, new_room_id)
    suffix = ":" + service.server_name
    canonical = old.content(CANONICAL_ALIAS)
    alias = canonical.get("alias")
    alt = canonical.get("alt_aliases")
    moved: dict[str, Any] = {}
    if isinstance(alias, str) and alias.endswith(suffix):
        moved["alias"] = alias
    if isinstance(alt, list):
        local_alt = [a for a in alt if isinstance(a, str) and a.endswith(suffix)]
        if local_alt:
            moved["alt_aliases"] = local_alt
    if moved:
        try:
            await service.send_event(user_id, new_room_id, CANONICAL_ALIAS, moved, "")
            await service.send_event(user_id, old.room_id, CANONICAL_ALIAS, {}, "")
        except MatrixError as exc:
            log.info("event=upgrade_alias_not_moved room_id=%s reason=%s", old.room_id, exc)
    if old.is_public:
        await service.db.run(store.set_room_public, new_room_id, True)
        await service.db.run(store.set_room_public, old.room_id, False)
        (await service.get_room(new_room_id)).is_public = True
        old.is_public = False
