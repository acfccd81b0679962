"""The space hierarchy (client-server API "Spaces", ``space_hierarchy.yaml``).

Depth-first walk over ``m.space.child`` state events from a space-room.  A child counts
only with a non-empty ``via`` list; children are ordered as "Ordering of children within a
space" says (valid ``order`` first, lexicographically; then ``origin_server_ts``; then room
ID).  Rooms are included when the requester may see or join them: joined or invited, join
rule ``public``/``knock``/``knock_restricted``, ``restricted`` with a joined allowed room,
or ``world_readable`` history.  Rooms this node does not know are skipped (no federation
yet), and loops are cut.  Pagination tokens encode the offset and the parameters that may
not change between pages.
"""

from __future__ import annotations

import re
from typing import Any

from federation.errors import Forbidden, InvalidParam, NotFound

from .client_format import strip_state_event
from .state_cache import RoomState
from .summary import room_summary

DEFAULT_MAX_DEPTH = 10
MAX_MAX_DEPTH = 50
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_ROOMS = 1000

_ORDER = re.compile(r"^[\x20-\x7E]{1,50}$")


def valid_children(room: RoomState, suggested_only: bool) -> list:
    children = []
    for (etype, skey), ev in room.state.items():
        if etype != "m.space.child":
            continue
        via = ev.content.get("via")
        if not isinstance(via, list) or not via:
            continue
        if suggested_only and ev.content.get("suggested") is not True:
            continue
        children.append(ev)

    def key(ev):
        order = ev.content.get("order")
        valid = isinstance(order, str) and _ORDER.match(order) is not None
        return (0 if valid else 1, order if valid else "", ev.origin_server_ts, ev.state_key)

    return sorted(children, key=key)


def can_see(room: RoomState, user_id: str, joined_rooms: set[str]) -> bool:
    membership = room.membership(user_id)
    if membership in ("join", "invite"):
        return True
    if membership == "ban":
        return False
    rules = room.content("m.room.join_rules")
    rule = rules.get("join_rule")
    if rule in ("public", "knock", "knock_restricted"):
        return True
    if rule == "restricted":
        for allow in rules.get("allow") or []:
            if isinstance(allow, dict) and allow.get("room_id") in joined_rooms:
                return True
    hv = room.content("m.room.history_visibility").get("history_visibility")
    return hv == "world_readable"


def _token(offset: int, suggested_only: bool, max_depth: int) -> str:
    return f"h{offset}_{int(suggested_only)}_{max_depth}"


def _parse_token(token: str, suggested_only: bool, max_depth: int) -> int:
    m = re.fullmatch(r"h(\d{1,9})_([01])_(\d{1,3})", token or "")
    if m is None:
        raise InvalidParam("Unknown pagination token")
    if bool(int(m.group(2))) != suggested_only or int(m.group(3)) != max_depth:
        raise InvalidParam("suggested_only and max_depth cannot change on paginated requests")
    return int(m.group(1))


async def hierarchy(service: Any, user_id: str, room_id: str, *, suggested_only: bool,
                    limit: int | None, max_depth: int | None, from_token: str | None) -> dict:
    if max_depth is None:
        max_depth = DEFAULT_MAX_DEPTH
    if max_depth < 0:
        raise InvalidParam("max_depth must be a non-negative integer")
    max_depth = min(max_depth, MAX_MAX_DEPTH)
    if limit is None:
        limit = DEFAULT_LIMIT
    if limit < 1:
        raise InvalidParam("limit must be an integer greater than zero")
    limit = min(limit, MAX_LIMIT)
    offset = _parse_token(from_token, suggested_only, max_depth) if from_token else 0

    joined = set(await service.joined_room_ids(user_id))
    try:
        root = await service.get_room(room_id)
    except NotFound:
        raise Forbidden("You are not allowed to view this room.") from None
    if not can_see(root, user_id, joined):
        raise Forbidden("You are not allowed to view this room.")

    entries: list[dict] = []
    seen: set[str] = set()
    # Iterative depth-first walk: (room, depth).
    stack: list[tuple[RoomState, int]] = [(root, 0)]
    while stack and len(entries) < MAX_ROOMS:
        room, depth = stack.pop()
        if room.room_id in seen:
            continue
        seen.add(room.room_id)
        children = valid_children(room, suggested_only)
        summary = room_summary(room, full=True)
        summary["children_state"] = [dict(strip_state_event(ev),
                                          origin_server_ts=ev.origin_server_ts)
                                     for ev in children] if room.room_type == "m.space" else []
        entries.append(summary)
        if depth >= max_depth or room.room_type != "m.space":
            continue
        kids: list[RoomState] = []
        for ev in children:
            if ev.state_key in seen:
                continue
            try:
                child = await service.get_room(ev.state_key)
            except NotFound:
                continue
            if can_see(child, user_id, joined):
                kids.append(child)
        for child in reversed(kids):
            stack.append((child, depth + 1))

    page = entries[offset:offset + limit]
    out: dict[str, Any] = {"rooms": page}
    if offset + limit < len(entries):
        out["next_batch"] = _token(offset + limit, suggested_only, max_depth)
    return out
