"""Stored filters (client-server API "Filtering": ``POST/GET /user/{userId}/filter``).

Filter IDs are a per-user counter rendered as decimal strings (never starting with ``{``, so the
``filter`` query parameter of ``/sync`` can tell an ID from inline JSON).  Parsed filters are
cached in memory: long-polling clients send the same filter ID on every request.

Definitions are capped (``filtering.MAX_FILTER_*``) on upload and inline in ``/sync``.  A
stored filter is validated again when it is loaded: one stored before the caps existed is
refused with 400 ``M_INVALID_PARAM`` when a sync names it, but can still be read back.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from federation.canonical_json import parse_json
from federation.errors import InvalidParam, MatrixError, NotFound
from node.filtering import DEFAULT_FILTER, Filter, check_filter_size, parse_filter
from schema.sync import user_filters

_CACHE_SIZE = 4096


def _insert_filter(conn: Any, user_id: str, text: str) -> int:
    current = conn.execute(
        select(func.max(user_filters.c.filter_id)).where(user_filters.c.user_id == user_id)
    ).scalar()
    filter_id = (current or 0) + 1
    conn.execute(
        insert(user_filters).values(user_id=user_id, filter_id=filter_id, filter_json=text)
    )
    return filter_id


def _select_filter(conn: Any, user_id: str, filter_id: int) -> str | None:
    return conn.execute(
        select(user_filters.c.filter_json).where(
            user_filters.c.user_id == user_id, user_filters.c.filter_id == filter_id
        )
    ).scalar()


class FilterStore:
    def __init__(self, db: Any) -> None:
        self.db = db
        # (definition, parsed filter or why it is refused), most recently used last
        self._cache: OrderedDict[tuple[str, int], tuple[Any, Filter | MatrixError]] = OrderedDict()

    async def create(self, user_id: str, definition: Any) -> str:
        """Validate and store a filter; returns its ID."""
        raw = orjson.dumps(definition)
        check_filter_size(len(raw))
        parsed = parse_filter(definition)
        text = raw.decode()
        for _attempt in range(5):
            try:
                filter_id = await self.db.run(_insert_filter, user_id, text)
                break
            except IntegrityError:  # two concurrent uploads for the same user
                continue
        else:
            raise RuntimeError("could not allocate a filter id")
        self._remember((user_id, filter_id), (definition, parsed))
        return str(filter_id)

    async def get_definition(self, user_id: str, filter_id: str) -> Any:
        return (await self._load(user_id, filter_id))[0]

    async def get(self, user_id: str, filter_id: str) -> Filter:
        parsed = (await self._load(user_id, filter_id))[1]
        if isinstance(parsed, MatrixError):
            raise InvalidParam(
                f"Stored filter {filter_id} is no longer accepted "
                f"({parsed.message}); upload a new filter"
            )
        return parsed

    async def _load(self, user_id: str, filter_id: str) -> tuple[Any, Filter | MatrixError]:
        if not filter_id.isascii() or not filter_id.isdigit() or len(filter_id) > 18:
            raise NotFound("No such filter")
        key = (user_id, int(filter_id))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        text = await self.db.run(_select_filter, user_id, key[1])
        if text is None:
            raise NotFound("No such filter")
        definition = orjson.loads(text)
        parsed: Filter | MatrixError
        try:
            check_filter_size(len(text.encode()))
            parsed = parse_filter(definition)
        except MatrixError as exc:  # stored before the limits existed
            parsed = exc.with_traceback(None)
        entry = (definition, parsed)
        self._remember(key, entry)
        return entry

    def _remember(self, key: tuple[str, int], entry: tuple[Any, Filter | MatrixError]) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    async def resolve_sync_param(self, user_id: str, param: str | None) -> Filter:
        """The ``/sync`` ``filter`` query parameter: a filter ID or inline JSON."""
        if param is None or param == "":
            return DEFAULT_FILTER
        if param.lstrip().startswith("{"):
            raw = param.encode("utf-8")
            try:
                check_filter_size(len(raw))
            except MatrixError as exc:
                raise InvalidParam(f"Invalid filter: {exc.message}") from None
            try:
                definition = parse_json(raw)
            except Exception:  # noqa: BLE001 - any parse failure is a bad parameter
                raise InvalidParam("filter is not valid JSON") from None
            try:
                return parse_filter(definition)
            except Exception as exc:  # noqa: BLE001 - any bad filter is a bad parameter
                raise InvalidParam(f"Invalid filter: {getattr(exc, 'message', exc)}") from None
        try:
            return await self.get(user_id, param)
        except NotFound:
            raise InvalidParam("Unknown filter ID") from None
