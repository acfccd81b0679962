"""Another server's published room directory, for the client ``/publicRooms?server=``.

Spec: client-server API "Listing rooms" (``list_public_rooms.yaml``: ``server`` -- "The
server to fetch the published room directory from. Defaults to the local server"),
server-server API "Public Room Directory" (``public_rooms.yaml``: ``GET`` with ``limit``
and ``since``, ``POST`` with a ``filter``; the answer is a ``PublishedRoomsChunk`` page).

The remote answer is untrusted: ``clean_page`` keeps only well-typed
``PublishedRoomsChunk`` fields of at most ``limit`` rooms (a room without a valid
``room_id`` is dropped) and pagination tokens of a sane length, so what a client sees is
always spec-shaped.  Pages are cached briefly per (server, request) (``TTL_MS``, at most
``CACHE_SIZE`` pages): ``GET /publicRooms`` needs no access token, so without the cache
anyone could make the node ask another school for its directory on every request.
Concurrent identical requests share one federation request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

MAX_LIMIT = 500  # rooms per page, as the local directory (node/rooms/directory_ops.py)
MAX_TOKEN_CHARS = 1024  # a next_batch/prev_batch longer than this is dropped
MAX_STRING_CHARS = 4096  # a longer name/topic/alias/avatar is dropped from the room
TTL_MS = 60_000
CACHE_SIZE = 200

_STR_FIELDS = ("name", "topic", "canonical_alias", "avatar_url", "join_rule", "room_type")


def clean_room(raw: Any) -> dict | None:
    """A ``PublishedRoomsChunk`` with only its own, well-typed fields; None without a
    valid ``room_id``."""
    if not isinstance(raw, dict):
        return None
    room_id = raw.get("room_id")
    if not isinstance(room_id, str) or not room_id.startswith("!") or len(room_id) > 255:
        return None
    out: dict[str, Any] = {"room_id": room_id}
    for key in _STR_FIELDS:
        value = raw.get(key)
        if isinstance(value, str) and len(value) <= MAX_STRING_CHARS:
            out[key] = value
    n = raw.get("num_joined_members")
    out["num_joined_members"] = (
        n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0
    )
    for key in ("world_readable", "guest_can_join"):
        out[key] = raw.get(key) is True
    out.setdefault("join_rule", "public")  # the spec's default for the field
    return out


def clean_page(body: Any, limit: int) -> dict:
    """The client's ``publicRooms`` answer from a remote server's untrusted one."""
    chunk_in = body.get("chunk") if isinstance(body, dict) else None
    rooms: list[dict] = []
    if isinstance(chunk_in, list):
        for raw in chunk_in:
            if len(rooms) >= limit:
                break
            room = clean_room(raw)
            if room is not None:
                rooms.append(room)
    out: dict[str, Any] = {"chunk": rooms}
    for key in ("next_batch", "prev_batch"):
        token = body.get(key) if isinstance(body, dict) else None
        if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS:
            out[key] = token
    estimate = body.get("total_room_count_estimate") if isinstance(body, dict) else None
    if isinstance(estimate, int) and not isinstance(estimate, bool) and estimate >= 0:
        out["total_room_count_estimate"] = estimate
    return out


def effective_limit(limit: int | None) -> int:
    """The page size asked of the remote server: the client's, within ``MAX_LIMIT``."""
    if limit is None or limit <= 0:
        return MAX_LIMIT
    return min(limit, MAX_LIMIT)


def request_for(
    *,
    limit: int,
    since: str | None,
    search_term: str | None,
    room_types: Sequence[str | None] | None,
) -> tuple[str, dict | None, dict | None]:
    """("GET" or "POST", query, body) of the federation request: a filter needs POST."""
    if search_term or room_types is not None:
        body: dict[str, Any] = {"limit": limit}
        if since:
            body["since"] = since
        flt: dict[str, Any] = {}
        if search_term:
            flt["generic_search_term"] = search_term
        if room_types is not None:
            flt["room_types"] = list(room_types)
        body["filter"] = flt
        return "POST", None, body
    query: dict[str, Any] = {"limit": limit}
    if since:
        query["since"] = since
    return "GET", query, None


class PageCache:
    """Recent remote pages per request key, with an injected clock."""

    def __init__(self, clock: Any, ttl_ms: int = TTL_MS, size: int = CACHE_SIZE) -> None:
        self._clock = clock
        self._ttl = ttl_ms
        self._size = size
        self._pages: OrderedDict[Any, tuple[int, dict]] = OrderedDict()

    def get(self, key: Any) -> dict | None:
        hit = self._pages.get(key)
        if hit is None or hit[0] <= self._clock.time_ms():
            return None
        return hit[1]

    def put(self, key: Any, page: dict) -> None:
        self._pages[key] = (self._clock.time_ms() + self._ttl, page)
        self._pages.move_to_end(key)
        while len(self._pages) > self._size:
            self._pages.popitem(last=False)
