"""``GET /_matrix/client/v1/mutual_rooms`` (client-server API "Mutual rooms",
``mutual_rooms.yaml``): the rooms where both the caller and ``user_id`` are joined.

Rules: ``user_id`` is required (400 ``M_MISSING_PARAM``), must be a user ID and not the
caller's own (400 ``M_INVALID_PARAM``); an unknown user simply shares no room.  Results
are sorted by room ID and paged ``PAGE_SIZE`` at a time; ``next_batch`` is the last room
ID of the page, so a page is stable while memberships change (a ``from`` that is not a
token of ours is 400 ``M_INVALID_PARAM``).  Only the caller's joined rooms are looked at,
so nothing about rooms the caller is not in can leak.
"""

from __future__ import annotations

from typing import Any

from federation.errors import InvalidParam, NotFound
from federation.identifiers import is_valid_user_id

from ...http.request import MissingParam
from .common import V1

PAGE_SIZE = 100
_TOKEN_PREFIX = "mr_"


def mutual_page(mine: list[str], theirs: set[str], start: str | None) -> dict[str, Any]:
    """One page of the sorted intersection after room ID ``start`` (pure)."""
    shared = sorted(r for r in mine if r in theirs)
    rest = [r for r in shared if start is None or r > start]
    out: dict[str, Any] = {"joined": rest[:PAGE_SIZE], "count": len(shared)}
    if len(rest) > PAGE_SIZE:
        out["next_batch"] = _TOKEN_PREFIX + rest[PAGE_SIZE - 1]
    return out


def parse_from(token: str | None) -> str | None:
    if token is None:
        return None
    if not token.startswith(_TOKEN_PREFIX + "!") or len(token) > 512:
        raise InvalidParam("Unknown 'from' token")
    return token[len(_TOKEN_PREFIX) :]


def register(router: Any, service: Any) -> None:
    async def get_mutual_rooms(req: Any) -> tuple[int, dict]:
        other = req.query("user_id")
        if other is None:
            raise MissingParam("Missing 'user_id'")
        if not is_valid_user_id(other):
            raise InvalidParam("The user ID provided was invalid")
        if other == req.user_id:
            raise InvalidParam("'user_id' must not be your own user ID")
        start = parse_from(req.query("from"))
        mine = await service.joined_room_ids(req.user_id)
        theirs = set()
        for room_id in mine:
            try:
                room = await service.get_room(room_id)
            except NotFound:
                continue
            if other in room.joined:
                theirs.add(room_id)
        return 200, mutual_page(mine, theirs, start)

    router.add("GET", V1 + "/mutual_rooms", get_mutual_rooms, rate_limited=True)
