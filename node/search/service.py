"""``POST /search``: the ``room_events`` category, from a parsed request to the response.

Spec: client-server API "Server Side Search"
(https://spec.matrix.org/v1.16/client-server-api/#server-side-search) and
``search.yaml``.  The rooms searched are those the user is in or has been in (current
memberships join, leave, ban and invite; forgotten rooms are not searched), each
limited to what the history visibility rules let the user see (``scope.py``).  The
database returns one page of hits in the requested order; the events are loaded from
the rooms service, checked once more against the visibility rules and the filter, and
formatted like every other client event.  Optional parts: the context around each
result, the senders' profiles at the time of the result, the state of each room with
results, and groupings by room or sender.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from federation.errors import InvalidParam, MatrixError
from federation.events.model import Event
from node.filtering import EventFilter
from node.http.request import Requester
from node.rooms.access import room_view
from node.rooms.event_meta import committed_stream
from node.rooms.service import RoomService
from node.rooms.visibility import VisibilityChecker
from node.stream_tokens import events_token

from . import query
from .batch_token import Position, TokenCodec
from .index import KEY_TYPES
from .scope import build_scope, visible_ranges
from .terms import words

log = logging.getLogger("parta.search")

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
DEFAULT_CONTEXT = 5
MAX_CONTEXT = 20
MAX_ROOMS = 5000  # rooms one search looks at (the user's most recent memberships first)


@dataclass(frozen=True)
class RoomEventsCriteria:
    search_term: str
    keys: tuple[str, ...] = tuple(KEY_TYPES)
    event_filter: EventFilter = field(default_factory=EventFilter)
    order_by: str = "rank"
    before_limit: int | None = None  # None: no event_context requested
    after_limit: int = DEFAULT_CONTEXT
    include_profile: bool = False
    include_state: bool = False
    group_by: tuple[str, ...] = ()


class SearchService:
    def __init__(self, rooms: RoomService, codec: TokenCodec) -> None:
        self.rooms = rooms
        self.db = rooms.db
        self.codec = codec

    async def search_room_events(
        self, user_id: str, device_id: str | None, crit: RoomEventsCriteria, next_batch: str | None
    ) -> dict[str, Any]:
        pos = self.codec.decode(next_batch) if next_batch is not None else None
        if pos is not None and pos.order != crit.order_by:
            raise InvalidParam("next_batch was issued for another order_by")
        ws = words(crit.search_term)
        if not ws:
            return {"count": 0, "highlights": [], "results": []}
        flt = crit.event_filter
        limit = min(flt.limit or DEFAULT_LIMIT, MAX_LIMIT)
        type_filter = EventFilter(types=flt.types, not_types=flt.not_types)
        types = [KEY_TYPES[k] for k in crit.keys if type_filter.allows(KEY_TYPES[k])]
        senders = sorted(flt.senders) if flt.senders is not None else None
        group_key = pos.group_key if pos is not None else None
        group_value = pos.group_value if pos is not None else None
        if group_key == "sender" and group_value is not None:
            senders = [s for s in (senders or [group_value]) if s == group_value]

        checkers: dict[str, VisibilityChecker] = {}
        per_room = []
        for room_id in await self._room_ids(user_id):
            if not flt.allows_room(room_id):
                continue
            if group_key == "room_id" and room_id != group_value:
                continue
            mem, hv = await self.rooms.visibility_timelines(room_id, user_id)
            # Ignored senders' messages are not results either (node/rooms/ignored.py).
            checkers[room_id] = VisibilityChecker(user_id, mem, hv, self.rooms.ignored.of(user_id))
            ranges = visible_ranges(user_id, mem, hv)
            if ranges is None or ranges:
                per_room.append((room_id, ranges))
        q = query.Query(
            words=ws,
            scope=build_scope(per_room),
            types=types,
            senders=senders,
            not_senders=sorted(flt.not_senders),
        )
        at = pos.at if pos is not None else None
        window: tuple[int | None, int] | None = None
        if crit.order_by == "rank":
            if pos is not None and pos.window_high is not None:
                window = (pos.window_low, pos.window_high)
            else:
                window = (None, self.rooms.current_stream_ordering())
        hits, count, window = await self.db.read(
            query.search, q, order=crit.order_by, at=at, limit=limit + 1, window=window
        )
        more = len(hits) > limit
        hits = hits[:limit]
        evs = await self.rooms.get_events([h.event_id for h in hits])
        kept: list[tuple[query.Hit, Event]] = []
        for h in hits:
            ev = evs.get(h.event_id)
            checker = checkers.get(h.room_id)
            if (
                ev is None
                or checker is None
                or ev.room_id != h.room_id
                or not checker.visible(ev)
                or not flt.allows(ev.type, ev.sender, ev.content)
                # An erased sender's event served redacted to this user must not be found
                # by its original words either (node/rooms/erasure.py).
                or self.rooms.erasure.served_content(ev, user_id, self.rooms) is not None
            ):
                continue
            kept.append((h, ev))

        results = []
        for h, ev in kept:
            item: dict[str, Any] = {"rank": h.rank, "result": self._fmt(ev, user_id, device_id)}
            if crit.before_limit is not None:
                item["context"] = await self._context(
                    ev, checkers[h.room_id], crit, user_id, device_id
                )
            results.append(item)
        # Bundled aggregations (client-server API "Aggregations of child events"), as
        # /messages serves them: edits, threads and references of each result.
        await self.rooms.relations.add_bundles(
            [(h.room_id, item["result"]) for (h, _), item in zip(kept, results, strict=True)],
            Requester(user_id, device_id),
        )
        body: dict[str, Any] = {"count": count, "highlights": ws, "results": results}

        def token(p: Position) -> str:
            return self.codec.encode(p)

        low, high = window if window is not None else (None, None)
        if more:
            if crit.order_by == "recent":
                body["next_batch"] = token(replace_at(pos, crit.order_by, hits[-1].stream))
            else:
                nxt = replace_at(pos, crit.order_by, (at or 0) + len(hits))
                body["next_batch"] = token(replace(nxt, window_low=low, window_high=high))
        if crit.group_by:
            body["groups"] = self._groups(crit, pos, hits, kept, more, (low, high))
        if crit.include_state:
            body["state"] = await self._state(user_id, device_id, {h.room_id for h, _ in kept})
        return body

    async def _room_ids(self, user_id: str) -> list[str]:
        rooms = await self.rooms.get_rooms_for_user(user_id, ["join", "leave", "ban", "invite"])
        ids = [room_id for room_id, _, _ in rooms]
        if len(ids) > MAX_ROOMS:
            by_recent = sorted(rooms, key=lambda r: committed_stream(r[2]), reverse=True)
            ids = [room_id for room_id, _, _ in by_recent[:MAX_ROOMS]]
        return ids

    def _fmt(self, ev: Event, user_id: str, device_id: str | None) -> dict:
        return self.rooms.format_client_event(ev, user_id=user_id, device_id=device_id)

    async def _context(
        self,
        ev: Event,
        checker: VisibilityChecker,
        crit: RoomEventsCriteria,
        user_id: str,
        device_id: str | None,
    ) -> dict[str, Any]:
        """``events_before`` / ``events_after`` the result (visible ones only), their
        pagination tokens, and ``profile_info`` when asked."""
        stream = committed_stream(ev)
        before_n = crit.before_limit or 0
        after_n = crit.after_limit

        async def collect(direction: str, n: int) -> list[Event]:
            if n <= 0:
                return []
            start = stream - 1 if direction == "b" else stream
            rows = await self.rooms.get_events_in_range(ev.room_id, start, None, n + 10, direction)
            return [e for e in rows if checker.visible(e)][:n]

        before = await collect("b", before_n)
        after = await collect("f", after_n)
        first = committed_stream(before[-1]) if before else stream
        last = committed_stream(after[-1]) if after else stream
        ctx: dict[str, Any] = {
            "start": events_token(first - 1),
            "end": events_token(last),
            "events_before": [self._fmt(e, user_id, device_id) for e in before],
            "events_after": [self._fmt(e, user_id, device_id) for e in after],
        }
        if crit.include_profile:
            state = await self.rooms.get_state_at(ev.room_id, stream)
            profiles: dict[str, dict] = {}
            for sender in {ev.sender, *(e.sender for e in before), *(e.sender for e in after)}:
                member = state.get(("m.room.member", sender))
                if member is None:
                    continue
                profile = {
                    k: member.content[k]
                    for k in ("displayname", "avatar_url")
                    if isinstance(member.content.get(k), str)
                }
                profiles[sender] = profile
            ctx["profile_info"] = profiles
        return ctx

    def _groups(
        self,
        crit: RoomEventsCriteria,
        pos: Position | None,
        hits: list[query.Hit],
        kept: list[tuple[query.Hit, Event]],
        more: bool,
        window: tuple[int | None, int | None],
    ) -> dict[str, dict[str, dict]]:
        """``groups.<key>.<value>``: the results of each value in order, ``order`` (1 is
        the group of the first result) and a ``next_batch`` that pages within the group.
        In ``rank`` order a group's offset is known only on the first page or when
        already paging within that group; elsewhere the group gets no token (the top
        level ``next_batch`` still pages through everything)."""
        out: dict[str, dict[str, dict]] = {}
        for key in crit.group_by:
            groups: dict[str, dict] = {}
            for h, _ in kept:
                value = h.room_id if key == "room_id" else h.sender
                group = groups.setdefault(value, {"results": [], "order": len(groups) + 1})
                group["results"].append(h.event_id)
            if more:
                for value, group in groups.items():
                    mine = [
                        h for h in hits if (h.room_id if key == "room_id" else h.sender) == value
                    ]
                    same = pos is not None and pos.group_key == key and pos.group_value == value
                    if crit.order_by == "recent":
                        at = mine[-1].stream
                    elif pos is None or pos.at == 0 or same:
                        at = (pos.at if same and pos is not None else 0) + len(mine)
                    else:
                        continue
                    group["next_batch"] = self.codec.encode(
                        Position(crit.order_by, at, key, value, *window)
                    )
            out[key] = groups
        return out

    async def _state(
        self, user_id: str, device_id: str | None, room_ids: set[str]
    ) -> dict[str, list[dict]]:
        """The state of each room with results: the current state, or for a room the
        user left the state when they left (as ``GET /rooms/{roomId}/state``)."""
        out: dict[str, list[dict]] = {}
        for room_id in sorted(room_ids):
            try:
                view = await room_view(self.rooms, user_id, room_id)
            except MatrixError:  # no longer readable (e.g. forgotten meanwhile)
                continue
            state = await view.state(self.rooms)
            out[room_id] = [self._fmt(ev, user_id, device_id) for ev in state.values()]
        return out


def replace_at(pos: Position | None, order: str, at: int) -> Position:
    """The position of the next page: same group (if any), new offset or stream."""
    if pos is None:
        return Position(order, at)
    return replace(pos, at=at)
