"""Event filters (client-server API "Filtering"; definitions ``sync_filter``, ``event_filter``,
``room_event_filter``).

``parse_filter(json)`` validates a filter definition into immutable objects; the sync handler
asks them questions (``room_allowed``, ``EventFilter.allows``, ``limit``) and ``project_fields``
applies ``event_fields``.  Type patterns accept ``*`` as "any sequence of characters".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

from federation.errors import BadJSON

DEFAULT_TIMELINE_LIMIT = 10
MAX_LIMIT = 1000


@lru_cache(maxsize=1024)
def _type_pattern(pattern: str) -> re.Pattern:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$",
                      re.DOTALL)


def type_matches(event_type: str, patterns: Iterable[str]) -> bool:
    for p in patterns:
        if "*" in p:
            if _type_pattern(p).match(event_type):
                return True
        elif p == event_type:
            return True
    return False


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

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows(self, event_type: str, sender: str | None = None,
               content: Mapping[str, Any] | None = None, room_id: str | None = None) -> bool:
        """Does an event pass this filter?  Events without a sender skip sender checks."""
        # A matching "not_*" entry excludes even when the positive list names it too.
        if self.not_types and type_matches(event_type, self.not_types):
            return False
        if self.types is not None and not type_matches(event_type, self.types):
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
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadJSON(f"{where}{key} must be a list of strings")
    return tuple(value)


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
    return EventFilter(
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
        unread_thread_notifications=bool(_bool(obj, "unread_thread_notifications", where,
                                               False)),
    )


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
            if not path or path.startswith(".") or (path.endswith(".")
                                                    and not path.endswith("\\.")):
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
        account_data=parse_event_filter(_object(room, "account_data", "room."),
                                        "room.account_data."),
    )
    return Filter(
        room=room_filter,
        presence=parse_event_filter(_object(obj, "presence", ""), "presence."),
        account_data=parse_event_filter(_object(obj, "account_data", ""), "account_data."),
        event_format=event_format,
        event_fields=event_fields,
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


def project_fields(event: dict, event_fields: Iterable[str] | None) -> dict:
    """Keep only the listed fields of a (client-format) event."""
    if event_fields is None:
        return event
    out: dict = {}
    for path in event_fields:
        keys = split_field_path(path)
        src: Any = event
        for key in keys:
            if not isinstance(src, dict) or key not in src:
                break
            src = src[key]
        else:
            dst = out
            for key in keys[:-1]:
                nxt = dst.get(key)
                if not isinstance(nxt, dict):
                    nxt = dst[key] = {}
                dst = nxt
            dst[keys[-1]] = src
    return out
