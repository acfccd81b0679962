"""``POST /_matrix/client/v3/search`` (client-server API "Server Side Search",
https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3search).

Parses and bounds the request body; the search itself is ``SearchService``.  Only the
``room_events`` category is specified; a request without it gets an empty
``search_categories``.  Shape errors are 400 ``M_BAD_JSON``, missing required fields
400 ``M_MISSING_PARAM``, values outside the spec's enums 400 ``M_INVALID_PARAM``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federation.errors import BadJSON, InvalidParam, MatrixError
from node.filtering import parse_event_filter

from ..index import KEY_TYPES
from ..service import DEFAULT_CONTEXT, MAX_CONTEXT, RoomEventsCriteria, SearchService

PATH = "/_matrix/client/v3/search"
GROUP_KEYS = ("room_id", "sender")
ORDERS = ("rank", "recent")


def _missing(what: str) -> MatrixError:
    return MatrixError(f"Missing '{what}'", errcode="M_MISSING_PARAM")


def _object(parent: dict, key: str, where: str) -> dict | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadJSON(f"'{where}{key}' must be an object")
    return value


def _bool(parent: dict, key: str, where: str) -> bool:
    value = parent.get(key, False)
    if not isinstance(value, bool):
        raise BadJSON(f"'{where}{key}' must be a boolean")
    return value


def _context_limit(parent: dict, key: str) -> int:
    value = parent.get(key, DEFAULT_CONTEXT)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadJSON(f"'event_context.{key}' must be a non-negative integer")
    return min(value, MAX_CONTEXT)


def parse_room_events(obj: dict) -> RoomEventsCriteria:
    where = "search_categories.room_events."
    term = obj.get("search_term")
    if term is None:
        raise _missing(where + "search_term")
    if not isinstance(term, str):
        raise BadJSON(f"'{where}search_term' must be a string")
    keys = obj.get("keys")
    if keys is None:
        keys = list(KEY_TYPES)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadJSON(f"'{where}keys' must be a list of strings")
    for k in keys:
        if k not in KEY_TYPES:
            raise InvalidParam(f"Unknown search key {k[:64]!r}: use {', '.join(KEY_TYPES)}")
    order_by = obj.get("order_by", "rank")
    if order_by not in ORDERS:
        raise InvalidParam("'order_by' must be 'rank' or 'recent'")
    raw_filter = _object(obj, "filter", where)
    flt = parse_event_filter(raw_filter, where + "filter.") if raw_filter is not None else None
    ctx = _object(obj, "event_context", where)
    group_by: list[str] = []
    groupings = _object(obj, "groupings", where)
    if groupings is not None:
        groups = groupings.get("group_by", [])
        if not isinstance(groups, list) or len(groups) > len(GROUP_KEYS) * 2:
            raise BadJSON(f"'{where}groupings.group_by' must be a short list")
        for g in groups:
            if not isinstance(g, dict):
                raise BadJSON(f"'{where}groupings.group_by' entries must be objects")
            key = g.get("key")
            if key not in GROUP_KEYS:
                raise InvalidParam("Group key must be 'room_id' or 'sender'")
            if key not in group_by:
                group_by.append(key)
    crit = RoomEventsCriteria(
        search_term=term,
        keys=tuple(dict.fromkeys(keys)) or tuple(KEY_TYPES),
        order_by=order_by,
        include_state=_bool(obj, "include_state", where),
        group_by=tuple(group_by),
    )
    changes: dict[str, Any] = {}
    if flt is not None:
        changes["event_filter"] = flt
    if ctx is not None:
        changes["before_limit"] = _context_limit(ctx, "before_limit")
        changes["after_limit"] = _context_limit(ctx, "after_limit")
        changes["include_profile"] = _bool(ctx, "include_profile", where + "event_context.")
    if changes:
        crit = replace(crit, **changes)
    return crit


def register(router: Any, service: SearchService) -> None:
    async def search(req: Any) -> tuple[int, dict]:
        body = req.json()
        categories = body.get("search_categories")
        if categories is None:
            raise _missing("search_categories")
        if not isinstance(categories, dict):
            raise BadJSON("'search_categories' must be an object")
        room_events = _object(categories, "room_events", "search_categories.")
        out: dict[str, Any] = {}
        if room_events is not None:
            crit = parse_room_events(room_events)
            out["room_events"] = await service.search_room_events(
                req.user_id, req.requester.device_id, crit, req.query("next_batch")
            )
        return 200, {"search_categories": out}

    router.add("POST", PATH, search, rate_limited=True)
