"""The published room directory (client-server API "Published room directory",
``list_public_rooms.yaml``): listing with ``limit``/``since``/``filter``
(``generic_search_term``, ``room_types`` with ``null`` for rooms without a type), and
per-room visibility.

Order: most joined members first, then room ID (stable).  Pagination tokens are offsets
into that order (``o<offset>``); ``next_batch``/``prev_batch`` appear only when there is
something in that direction.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from federation.auth.power_levels import named_level, user_power_level
from federation.errors import BadJSON, Forbidden, InvalidParam, NotFound

from . import store
from .summary import room_summary, search_text

MAX_LIMIT = 500


class PublicRoomsRequest(NamedTuple):
    """The checked body of a ``POST /publicRooms`` (client or federation API)."""

    limit: int | None
    since: str | None
    search_term: str | None
    room_types: list[str | None] | None


def parse_public_rooms_body(body: dict) -> PublicRoomsRequest:
    """``limit``, ``since``, ``filter.generic_search_term`` and ``filter.room_types`` of a
    ``POST /publicRooms`` body, each checked for its type (``M_BAD_JSON`` otherwise)."""
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise BadJSON("'limit' must be an integer")
    since = body.get("since")
    if since is not None and not isinstance(since, str):
        raise BadJSON("'since' must be a string")
    flt = body.get("filter") or {}
    if not isinstance(flt, dict):
        raise BadJSON("'filter' must be an object")
    term = flt.get("generic_search_term")
    if term is not None and not isinstance(term, str):
        raise BadJSON("'filter.generic_search_term' must be a string")
    room_types = flt.get("room_types")
    if room_types is not None and (
        not isinstance(room_types, list)
        or not all(t is None or isinstance(t, str) for t in room_types)
    ):
        raise BadJSON("'filter.room_types' must be a list of strings or null")
    return PublicRoomsRequest(limit, since, term, room_types)


def _offset(token: str | None) -> int:
    if token is None or token == "":
        return 0
    if (
        not token.startswith("o")
        or not token[1:].isascii()
        or not token[1:].isdigit()
        or len(token) > 12
    ):
        raise InvalidParam("Invalid 'since' token")
    return int(token[1:])


async def list_public_rooms(
    service: Any,
    *,
    limit: int | None,
    since: str | None,
    search_term: str | None = None,
    room_types: Sequence[str | None] | None = None,
) -> dict:
    offset = _offset(since)
    summaries = []
    for room_id in await service.db.run(store.public_room_ids):
        try:
            room = await service.get_room(room_id)
        except NotFound:
            continue
        summary = room_summary(room)
        if search_term and search_term.lower() not in search_text(summary):
            continue
        if room_types is not None and summary.get("room_type") not in room_types:
            continue
        summaries.append(summary)
    summaries.sort(key=lambda s: (-s["num_joined_members"], s["room_id"]))
    total = len(summaries)
    if limit is None or limit <= 0:
        limit = MAX_LIMIT
    limit = min(limit, MAX_LIMIT)
    chunk = summaries[offset : offset + limit]
    out: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": total}
    if offset + limit < total:
        out["next_batch"] = f"o{offset + limit}"
    if offset > 0:
        out["prev_batch"] = f"o{max(0, offset - limit)}"
    return out


async def get_visibility(service: Any, room_id: str) -> str:
    room = await service.get_room(room_id)
    return "public" if room.is_public else "private"


async def set_visibility(service: Any, user_id: str, room_id: str, visibility: str) -> None:
    """Publishing needs a joined member at or above ``state_default`` (moderators)."""
    if visibility not in ("public", "private"):
        raise InvalidParam("'visibility' must be 'public' or 'private'")
    room = await service.get_room(room_id)
    if room.membership(user_id) != "join" or user_power_level(
        user_id, room.state, room.room_version
    ) < named_level("state_default", room.state):
        raise Forbidden(
            "You do not have permission to change this room's visibility in the room directory"
        )
    await service.db.run(store.set_room_public, room_id, visibility == "public")
    room.is_public = visibility == "public"
