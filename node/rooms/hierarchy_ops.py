"""The space hierarchy (client-server API "Spaces", ``space_hierarchy.yaml``).

Depth-first walk over ``m.space.child`` state events from a space-room.  A child counts
only with a non-empty ``via`` list; children are ordered as "Ordering of children within a
space" says (valid ``order`` first, lexicographically; then ``origin_server_ts``; then room
ID).  Rooms are included when the requester may see or join them: joined or invited, join
rule ``public``/``knock``/``knock_restricted``, ``restricted`` with a joined allowed room,
or ``world_readable`` history.  Loops are cut.  Pagination tokens encode the offset and
the parameters that may not change between pages.

Children this node does not know are asked of the servers in their ``via`` list when the
federation area attached ``service.hooks.remote_hierarchy`` (node/rooms/hooks.py, made by
node/federation/remote/hierarchy.py: cached answers, failures skip the child); without it
they are skipped.  Each page re-walks the tree from the root but only as far as that page
needs (``offset + limit + 1`` rooms), so remote look-ups are bounded by the page: at most
``MAX_REMOTE_FETCHES`` uncached look-ups per request once the page has a room -- the page
then ends early with a ``next_batch`` (the next page continues from the cached answers).
The look-ups for the children of one room are made at the same time.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import defer

from federation.errors import Forbidden, InvalidParam, NotFound

from .client_format import strip_state_event
from .state_cache import RoomState
from .summary import room_summary

DEFAULT_MAX_DEPTH = 10
MAX_MAX_DEPTH = 50
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_ROOMS = 1000
MAX_REMOTE_FETCHES = 20  # uncached remote look-ups per page (see the docstring)
MAX_REMOTE_HARD = 100  # ... and in all, even while re-walking earlier pages

_ORDER = re.compile(r"^[\x20-\x7E]{1,50}$")


def valid_children(room: RoomState, suggested_only: bool) -> list:
    children = []
    for (etype, _skey), ev in room.state.items():
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


async def hierarchy(
    service: Any,
    user_id: str,
    room_id: str,
    *,
    suggested_only: bool,
    limit: int | None,
    max_depth: int | None,
    from_token: str | None,
) -> dict:
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

    remote = service.hooks.remote_hierarchy  # set when federating
    want = min(offset + limit + 1, MAX_ROOMS)
    fetches = 0
    truncated = False
    entries: list[dict] = []
    seen: set[str] = set()
    # Iterative depth-first walk: (room, depth); a room is a local RoomState or a
    # RemoteRoom (known only from another server's answer).
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack and len(entries) < want and not truncated:
        room, depth = stack.pop()
        if room.room_id in seen:
            continue
        seen.add(room.room_id)
        if isinstance(room, RoomState):
            children = valid_children(room, suggested_only)
            summary = room_summary(room, full=True)
            summary["children_state"] = (
                [
                    dict(strip_state_event(ev), origin_server_ts=ev.origin_server_ts)
                    for ev in children
                ]
                if room.room_type == "m.space"
                else []
            )
            refs = [(ev.state_key, ev.content["via"]) for ev in children]
            parent = None
        else:
            kids_state = room.children(suggested_only)
            summary = dict(room.summary, children_state=kids_state)
            refs = [(ev["state_key"], ev["content"]["via"]) for ev in kids_state]
            parent = room
        entries.append(summary)
        if depth >= max_depth or room.room_type != "m.space":
            continue
        # One slot per child, in order: a local room, a remote answer, or a look-up to
        # make (all of one room's look-ups run at once).
        slots: list[Any] = []
        lookups: list[tuple[int, str, list]] = []
        for child_id, via in refs:
            if child_id in seen:
                continue
            try:
                child = await service.get_room(child_id)
            except NotFound:
                child = None
            if child is not None:  # local data wins over any remote answer
                if can_see(child, user_id, joined):
                    slots.append(child)
                continue
            if remote is None:
                continue
            hit, found = remote.cached(child_id, suggested_only, parent)
            if not hit:
                if fetches >= MAX_REMOTE_FETCHES and len(entries) > offset:
                    truncated = True  # end this page here; the next one goes on
                    break
                if fetches >= MAX_REMOTE_HARD:
                    continue
                fetches += 1
                lookups.append((len(slots), child_id, via))
            slots.append(found)
        if truncated:
            break
        if lookups and remote is not None:  # there are look-ups only when federating
            answers = await defer.gatherResults(
                [
                    defer.ensureDeferred(remote.fetch(cid, via, suggested_only))
                    for _, cid, via in lookups
                ],
                consumeErrors=True,
            )
            for (i, _, _), found in zip(lookups, answers, strict=True):
                slots[i] = found
        kids = [
            c for c in slots if c is not None and (isinstance(c, RoomState) or c.visible_to(joined))
        ]
        for child in reversed(kids):
            stack.append((child, depth + 1))

    end = min(len(entries), offset + limit)
    out: dict[str, Any] = {"rooms": entries[offset:end]}
    if len(entries) > end or (truncated and end > offset):
        out["next_batch"] = _token(end, suggested_only, max_depth)
    return out
