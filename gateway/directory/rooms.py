"""The public rooms of the whole city as one room directory: every school's public rooms
(gathered over federation ``publicRooms``), searchable, served to clients as the gateway's
public room directory and as a JSON API for the dashboard.

Pure: combines the gateway's own published rooms with the rooms gathered from each school
(``gatherer.Gathered``), filters and pages them like the node's own directory
(``node/rooms/directory_ops``, client-server API ``list_public_rooms.yaml``): most joined
members first, then room ID; ``since`` tokens are offsets ``o<n>``; ``next_batch`` /
``prev_batch`` only when there is something in that direction.  A room listed by more than
one server (a cross-school room) appears once, from the server reporting most members.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from federation.errors import InvalidParam

MAX_LIMIT = 500
_SEARCHED = ("name", "topic", "canonical_alias")


def offset_of(token: str | None) -> int:
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


def matches(room: Mapping[str, Any], words: Sequence[str], extra: str = "") -> bool:
    """Every word occurs (case-insensitively) in the room's name, topic or alias, or in
    ``extra`` (e.g. the school's name)."""
    if not words:
        return True
    hay = " ".join(str(room.get(k) or "") for k in _SEARCHED).casefold() + " " + extra.casefold()
    return all(w in hay for w in words)


def search_words(term: str | None) -> list[str]:
    return (term or "").casefold().split()


def combine(sources: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> list[tuple[str, dict]]:
    """``(server, room)`` pairs from ``(server, rooms)`` sources, one per room ID (the
    listing with most joined members wins), sorted like the node's directory."""
    best: dict[str, tuple[str, dict]] = {}
    for server, rooms in sources:
        for room in rooms:
            rid = room.get("room_id")
            if not isinstance(rid, str):
                continue
            have = best.get(rid)
            if have is None or room.get("num_joined_members", 0) > have[1].get(
                "num_joined_members", 0
            ):
                best[rid] = (server, dict(room))
    return sorted(
        best.values(), key=lambda p: (-int(p[1].get("num_joined_members") or 0), p[1]["room_id"])
    )


def page(rooms: Sequence[dict], *, limit: int | None, since: str | None) -> dict:
    """A ``publicRooms`` response body for ``rooms`` (already filtered and sorted)."""
    offset = offset_of(since)
    total = len(rooms)
    if limit is None or limit <= 0:
        limit = MAX_LIMIT
    limit = min(limit, MAX_LIMIT)
    out: dict[str, Any] = {
        "chunk": list(rooms[offset : offset + limit]),
        "total_room_count_estimate": total,
    }
    if offset + limit < total:
        out["next_batch"] = f"o{offset + limit}"
    if offset > 0:
        out["prev_batch"] = f"o{max(0, offset - limit)}"
    return out


def filter_rooms(
    pairs: Iterable[tuple[str, dict]],
    *,
    term: str | None = None,
    room_types: Sequence[str | None] | None = None,
    school_names: Mapping[str, str] | None = None,
) -> list[tuple[str, dict]]:
    """Pairs whose room matches ``term`` (room fields, plus the school's name when
    ``school_names`` is given) and, when given, whose ``room_type`` is in ``room_types``
    (``None`` in the list: rooms without a type)."""
    words = search_words(term)
    out = []
    for server, room in pairs:
        if room_types is not None and room.get("room_type") not in room_types:
            continue
        extra = (school_names or {}).get(server, "")
        if matches(room, words, extra):
            out.append((server, room))
    return out
