"""Event filters (client-server API "Filtering"; definitions ``sync_filter``, ``event_filter``,
``room_event_filter``: https://spec.matrix.org/v1.16/client-server-api/#filtering).

``parse_filter(json)`` validates a filter definition into immutable objects; the sync handler
asks them questions (``room_allowed``, ``EventFilter.allows``, ``limit``) and ``project_fields``
applies ``event_fields``.  Type patterns accept ``*`` as "any sequence of characters".

A filter is user input that is consulted for every event a sync returns, so nothing here may
cost more than linear time in it: type globs are matched by ``federation.globs`` (no regular
expressions, no backtracking), ``event_fields`` is compiled once into a tree that is walked
alongside the event, and definitions are capped (the ``MAX_FILTER_*`` limits below) when they
are parsed, whether inline in ``/sync`` or uploaded.

Room event filters serve ``/sync`` (``node.sync``) and ``/messages`` and ``/context``
(``node.rooms``) alike, so this module sits below both areas rather than inside either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from federation.errors import BadJSON
from federation.globs import Glob

DEFAULT_TIMELINE_LIMIT = 10
MAX_LIMIT = 1000

# Limits on filter definitions.  Real clients send a few short lists (Element: a handful of
# types, rooms and event_fields); identifiers and event types are at most 255 bytes (server-
# server API "Size limits"), so no valid entry is longer than 255 characters.
MAX_FILTER_BYTES = 64 * 1024  # a definition as JSON: the inline /sync one or uploaded
MAX_FILTER_LIST_ENTRIES = 1000  # types, not_types, senders, ..., rooms, event_fields
MAX_FILTER_STRING_LENGTH = 255  # characters in one entry of such a list
MAX_TYPE_WILDCARDS = 100  # runs of '*' in one types / not_types list
TYPE_MEMO_LIMIT = 256  # memoised event types per compiled list (cleared when full)


def check_filter_size(size: int) -> None:
    """Refuse a definition of more than ``MAX_FILTER_BYTES`` bytes (400 ``M_BAD_JSON``)."""
    if size > MAX_FILTER_BYTES:
        raise BadJSON(
            f"The filter definition is {size} bytes; at most {MAX_FILTER_BYTES} are allowed"
        )


class TypePatterns:
    """A compiled ``types`` or ``not_types`` list: exact types in a set, a bare ``*`` (or
    ``**``...) as a flag, the other globs compiled.  A sync asks about the same few event
    types over and over, so answers for globs are memoised per type."""

    __slots__ = ("everything", "exact", "wild", "wildcards", "_memo")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.everything = False
        exact: set[str] = set()
        wild: dict[str, None] = {}
        for p in patterns:
            if "*" not in p:
                exact.add(p)
            elif not p.strip("*"):
                self.everything = True
            else:
                wild[p] = None
        self.exact = frozenset(exact)
        self.wild = tuple(Glob(p, any_one=None) for p in wild)
        self.wildcards = sum(g.wildcards for g in self.wild)
        self._memo: dict[str, bool] = {}

    def matches(self, event_type: str) -> bool:
        if self.everything or event_type in self.exact:
            return True
        if not self.wild:
            return False
        hit = self._memo.get(event_type)
        if hit is None:
            hit = any(g.matches(event_type) for g in self.wild)
            if len(self._memo) >= TYPE_MEMO_LIMIT:
                self._memo.clear()
            self._memo[event_type] = hit
        return hit


def type_matches(event_type: str, patterns: Iterable[str]) -> bool:
    """Does ``event_type`` match any of ``patterns`` (case-sensitive, ``*`` wildcards)?"""
    return TypePatterns(patterns).matches(event_type)


@dataclass(frozen=True)
class EventFilter:
    """``EventFilter`` / ``RoomEventFilter`` (the room-only fields are ignored elsewhere)."""

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: frozenset[str] | None = None
    not_senders: frozenset[str] = frozenset()
    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False
    _types: TypePatterns | None = field(default=None, init=False, compare=False, repr=False)
    _not_types: TypePatterns | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # compiled once per filter, not per event (the dataclass is frozen, hence setattr)
        if self.types is not None:
            object.__setattr__(self, "_types", TypePatterns(self.types))
        if self.not_types:
            object.__setattr__(self, "_not_types", TypePatterns(self.not_types))

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows(
        self,
        event_type: str,
        sender: str | None = None,
        content: Mapping[str, Any] | None = None,
        room_id: str | None = None,
    ) -> bool:
        """Does an event pass this filter?  Events without a sender skip sender checks."""
        # A matching "not_*" entry excludes even when the positive list names it too.
        if self._not_types is not None and self._not_types.matches(event_type):
            return False
        if self._types is not None and not self._types.matches(event_type):
            return False
        if sender is not None:
            if sender in self.not_senders:
                return False
            if self.senders is not None and sender not in self.senders:
                return False
        if room_id is not None and not self.allows_room(room_id):
            return False
        if self.contains_url is not None:
            has_url = isinstance(content, Mapping) and "url" in content
            if has_url != self.contains_url:
                return False
        return True

    @property
    def is_pass_all(self) -> bool:
        return self == _PASS_ALL


_PASS_ALL = EventFilter()


@dataclass(frozen=True)
class RoomFilter:
    rooms: frozenset[str] | None = None
    not_rooms: frozenset[str] = frozenset()
    include_leave: bool = False
    state: EventFilter = _PASS_ALL
    timeline: EventFilter = _PASS_ALL
    ephemeral: EventFilter = _PASS_ALL
    account_data: EventFilter = _PASS_ALL


@dataclass(frozen=True)
class Filter:
    """A whole sync filter."""

    room: RoomFilter = field(default_factory=RoomFilter)
    presence: EventFilter = _PASS_ALL
    account_data: EventFilter = _PASS_ALL
    event_format: str = "client"
    event_fields: tuple[str, ...] | None = None

    def room_allowed(self, room_id: str) -> bool:
        """The ``RoomFilter``'s rooms/not_rooms, applied before the per-section filters."""
        if room_id in self.room.not_rooms:
            return False
        return self.room.rooms is None or room_id in self.room.rooms

    @property
    def timeline_limit(self) -> int:
        limit = self.room.timeline.limit
        return DEFAULT_TIMELINE_LIMIT if limit is None else limit

    @property
    def lazy_load_members(self) -> bool:
        return self.room.state.lazy_load_members

    @property
    def include_redundant_members(self) -> bool:
        return self.room.state.lazy_load_members and self.room.state.include_redundant_members


DEFAULT_FILTER = Filter()


# --- parsing -----------------------------------------------------------------------------
def _str_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    if key not in obj:
        return None
    value = obj[key]
    if not isinstance(value, list):
        raise BadJSON(f"{where}{key} must be a list of strings")
    if len(value) > MAX_FILTER_LIST_ENTRIES:
        raise BadJSON(
            f"{where}{key} has {len(value)} entries; at most {MAX_FILTER_LIST_ENTRIES} are allowed"
        )
    for v in value:
        if not isinstance(v, str):
            raise BadJSON(f"{where}{key} must be a list of strings")
        if len(v) > MAX_FILTER_STRING_LENGTH:
            raise BadJSON(
                f"{where}{key} entries may be at most {MAX_FILTER_STRING_LENGTH} characters long"
            )
    return tuple(value)


def _check_wildcards(patterns: TypePatterns | None, key: str, where: str) -> None:
    if patterns is not None and patterns.wildcards > MAX_TYPE_WILDCARDS:
        raise BadJSON(
            f"{where}{key} has {patterns.wildcards} '*' wildcards; at most "
            f"{MAX_TYPE_WILDCARDS} are allowed (a run of '*' counts once)"
        )


def _bool(obj: Mapping[str, Any], key: str, where: str, default: bool | None) -> bool | None:
    if key not in obj:
        return default
    value = obj[key]
    if not isinstance(value, bool):
        raise BadJSON(f"{where}{key} must be a boolean")
    return value


def _object(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = obj.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadJSON(f"{where}{key} must be an object")
    return value


def parse_event_filter(obj: Mapping[str, Any], where: str = "") -> EventFilter:
    if not isinstance(obj, dict):
        raise BadJSON(f"{where or 'filter'} must be an object")
    limit = obj.get("limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BadJSON(f"{where}limit must be an integer greater than 0")
        limit = min(limit, MAX_LIMIT)
    senders = _str_list(obj, "senders", where)
    rooms = _str_list(obj, "rooms", where)
    parsed = EventFilter(
        limit=limit,
        types=_str_list(obj, "types", where),
        not_types=_str_list(obj, "not_types", where) or (),
        senders=frozenset(senders) if senders is not None else None,
        not_senders=frozenset(_str_list(obj, "not_senders", where) or ()),
        rooms=frozenset(rooms) if rooms is not None else None,
        not_rooms=frozenset(_str_list(obj, "not_rooms", where) or ()),
        contains_url=_bool(obj, "contains_url", where, None),
        lazy_load_members=bool(_bool(obj, "lazy_load_members", where, False)),
        include_redundant_members=bool(_bool(obj, "include_redundant_members", where, False)),
        unread_thread_notifications=bool(_bool(obj, "unread_thread_notifications", where, False)),
    )
    _check_wildcards(parsed._types, "types", where)
    _check_wildcards(parsed._not_types, "not_types", where)
    return parsed


def parse_filter(obj: Any) -> Filter:
    """Validate a ``Filter`` definition (400 ``M_BAD_JSON`` on a wrong shape)."""
    if not isinstance(obj, dict):
        raise BadJSON("Filter must be a JSON object")
    event_format = obj.get("event_format", "client")
    if event_format not in ("client", "federation"):
        raise BadJSON("event_format must be 'client' or 'federation'")
    event_fields = _str_list(obj, "event_fields", "")
    if event_fields is not None:
        for path in event_fields:
            if (
                not path
                or path.startswith(".")
                or (path.endswith(".") and not path.endswith("\\."))
            ):
                raise BadJSON(f"Invalid event_fields entry {path!r}")
    room = _object(obj, "room", "")
    rooms = _str_list(room, "rooms", "room.")
    room_filter = RoomFilter(
        rooms=frozenset(rooms) if rooms is not None else None,
        not_rooms=frozenset(_str_list(room, "not_rooms", "room.") or ()),
        include_leave=bool(_bool(room, "include_leave", "room.", False)),
        state=parse_event_filter(_object(room, "state", "room."), "room.state."),
        timeline=parse_event_filter(_object(room, "timeline", "room."), "room.timeline."),
        ephemeral=parse_event_filter(_object(room, "ephemeral", "room."), "room.ephemeral."),
        account_data=parse_event_filter(
            _object(room, "account_data", "room."), "room.account_data."
        ),
    )
    return Filter(
        room=room_filter,
        presence=parse_event_filter(_object(obj, "presence", ""), "presence."),
        account_data=parse_event_filter(_object(obj, "account_data", ""), "account_data."),
        event_format=event_format,
        event_fields=EventFields(event_fields) if event_fields is not None else None,
    )


# --- event_fields ----------------------------------------------------------------------------
def split_field_path(path: str) -> list[str]:
    """Split a dot-separated property path (appendices), honouring ``\\.`` and ``\\\\``."""
    parts, cur, i = [], [], 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            cur.append(path[i + 1])
            i += 2
            continue
        if ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


class _Whole:
    """Marks a field included whole in a compiled ``event_fields`` tree."""

    __slots__ = ()


_WHOLE = _Whole()


def compile_field_paths(paths: Iterable[str]) -> dict:
    """``event_fields`` as a tree of keys: ``{"content": {"body": _WHOLE}, "type": _WHOLE}``.
    A whole field wins over paths into it, in either order."""
    root: dict = {}
    for path in paths:
        keys = split_field_path(path)
        node = root
        for key in keys[:-1]:
            child = node.get(key)
            if child is _WHOLE:
                break
            if child is None:
                child = node[key] = {}
            node = child
        else:
            node[keys[-1]] = _WHOLE
    return root


class EventFields(tuple):
    """The ``event_fields`` strings as given (it compares equal to a plain tuple), carrying
    their compiled tree so that projecting an event does not split the paths again."""

    tree: dict

    def __new__(cls, paths: Iterable[str]) -> "EventFields":
        self = super().__new__(cls, paths)
        self.tree = compile_field_paths(self)
        return self


def _project(src: dict, tree: dict) -> dict:
    """Walk ``tree`` and ``src`` together, over whichever level is smaller: the cost is
    bounded by the event, not by the number of paths asked for."""
    out: dict = {}
    if len(tree) <= len(src):
        pairs = [(k, sub) for k, sub in tree.items() if k in src]
    else:
        pairs = [(k, tree[k]) for k in src if k in tree]
    for key, sub in pairs:
        value = src[key]
        if sub is _WHOLE:
            out[key] = value
        elif isinstance(value, dict):
            inner = _project(value, sub)
            if inner:
                out[key] = inner
    return out


def project_fields(event: dict, event_fields: Iterable[str] | None) -> dict:
    """Keep only the listed fields of a (client-format) event; the event is not changed.
    Paths that do not exist in the event, or lead through a non-object, are skipped."""
    if event_fields is None:
        return event
    tree = getattr(event_fields, "tree", None)
    if tree is None:
        tree = compile_field_paths(event_fields)
    return _project(event, tree)
