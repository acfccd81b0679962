"""Paging through a room's history: ``/messages`` and ``/context``.

Spec: client-server API ``message_pagination.yaml`` (``from``/``to``/``dir``/``limit``/
``filter``; ``start`` echoes ``from``; ``end`` is omitted when no further events are
available; ``state`` carries the senders' member events with ``lazy_load_members``),
``event_context.yaml`` (``limit`` is shared by ``events_before`` and ``events_after``;
``state`` is the state at the last event returned), "Room History Visibility".

Tokens are the events tokens of sync (``node.stream_tokens``): ``s<N>`` is the position
just after the event with stream ordering N.  Backwards from ``sN`` starts with event N;
forwards from ``sN`` starts after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from federation.errors import NotFound
from federation.events.model import Event
from node.filtering import EventFilter
from node.stream_tokens import events_position, events_token

from .access import history_visibility, may_read_history
from .event_meta import committed_stream, meta
from .visibility import VisibilityChecker

MAX_ROUNDS = 5  # DB round trips per request while events are filtered out
MIN_FETCH = 20


def _token(pos: int) -> str:
    """Pagination token; backfilled history has negative stream orderings: ``h<N>``."""
    return events_token(pos) if pos >= 0 else f"h{-pos}"


def _position(token: str) -> int:
    if (
        isinstance(token, str)
        and token.startswith("h")
        and token[1:].isascii()
        and token[1:].isdigit()
        and len(token) < 20
    ):
        return -int(token[1:])
    return events_position(token)


@dataclass
class Page:
    start: str
    end: str | None
    chunk: list[Event]
    state: list[Event] = field(default_factory=list)


def _allowed(ev: Event, flt: EventFilter | None) -> bool:
    return flt is None or flt.allows(ev.type, ev.sender, ev.content)


async def _checker(service: Any, room_id: str, user_id: str) -> VisibilityChecker:
    mem, hv = await service.visibility_timelines(room_id, user_id)
    return VisibilityChecker(user_id, mem, hv, service.ignored.of(user_id))


async def paginate(
    service: Any,
    user_id: str,
    room_id: str,
    *,
    from_token: str | None,
    to_token: str | None,
    direction: str,
    limit: int,
    event_filter: EventFilter | None = None,
) -> Page:
    room = await may_read_history(service, user_id, room_id)
    if from_token is not None:
        pos = _position(from_token)
    else:
        pos = service.current_stream_ordering() if direction == "b" else 0
    to_pos = _position(to_token) if to_token is not None else None
    start = from_token if from_token is not None else events_token(pos)
    if event_filter is not None and event_filter.limit is not None:
        limit = min(limit, event_filter.limit)

    checker = await _checker(service, room_id, user_id)
    if (
        room.membership(user_id) in ("leave", "ban")
        and history_visibility(room) != "world_readable"
        and checker.memberships.streams
    ):
        # Nothing after the user's leave is visible: do not walk through it.
        cap = checker.memberships.streams[-1]
        if direction == "b":
            pos = min(pos, cap)
        else:
            to_pos = cap if to_pos is None else min(to_pos, cap)

    chunk: list[Event] = []
    exhausted = backfilled = False
    for attempt in range(2):
        for _ in range(MAX_ROUNDS):
            fetch = max(limit - len(chunk), MIN_FETCH)
            rows = await service.get_events_in_range(room_id, pos, to_pos, fetch, direction)
            consumed = 0
            for ev in rows:
                if len(chunk) >= limit:
                    break
                consumed += 1
                stream = committed_stream(ev)
                pos = stream - 1 if direction == "b" else stream
                if checker.visible(ev) and _allowed(ev, event_filter):
                    chunk.append(ev)
            if len(rows) < fetch and consumed == len(rows):
                exhausted = True
                break
            if len(chunk) >= limit:
                break
        # Past the start of our copy of a federated room: fetch older history from a
        # server in the room (node/federation/remote/backfill.py), stored below it.
        backfill = service.hooks.backfill
        if (
            attempt
            or not exhausted
            or direction != "b"
            or backfill is None
            or to_pos is not None
            or len(chunk) >= limit
            or not await backfill(room_id, max(limit - len(chunk), MIN_FETCH))
        ):
            break
        exhausted, backfilled = False, True
    # After a backfill there may be more to fetch: the next request asks again.
    page = Page(start=start, end=None if exhausted and not backfilled else _token(pos), chunk=chunk)
    if event_filter is not None and event_filter.lazy_load_members:
        page.state = await _member_state(service, user_id, room_id, chunk)
    return page


async def _member_state(
    service: Any, user_id: str, room_id: str, events: list[Event]
) -> list[Event]:
    room = await service.get_room(room_id)
    senders = {ev.sender for ev in events}
    return [
        room.state[("m.room.member", s)]
        for s in sorted(senders)
        if ("m.room.member", s) in room.state
    ]


@dataclass
class Context:
    event: Event
    before: list[Event]
    after: list[Event]
    start: str
    end: str
    state: list[Event]


async def event_context(
    service: Any,
    user_id: str,
    room_id: str,
    event_id: str,
    *,
    limit: int,
    event_filter: EventFilter | None = None,
) -> Context:
    await may_read_history(service, user_id, room_id)
    ev = await service.get_event(event_id)
    checker = await _checker(service, room_id, user_id)
    if (
        ev is None
        or ev.room_id != room_id
        or meta(ev).stream_ordering is None
        or not checker.visible(ev)
    ):
        raise NotFound("Event not found.")
    stream = committed_stream(ev)
    n_before = limit // 2
    n_after = limit - n_before

    async def collect(direction: str, n: int) -> list[Event]:
        if n <= 0:
            return []
        start = stream - 1 if direction == "b" else stream
        rows = await service.get_events_in_range(
            room_id, start, None, max(n * 2, MIN_FETCH), direction
        )
        out = [e for e in rows if checker.visible(e) and _allowed(e, event_filter)]
        return out[:n]

    before = await collect("b", n_before)
    after = await collect("f", n_after)
    first = committed_stream(before[-1]) if before else stream
    last = committed_stream(after[-1]) if after else stream
    state_map = await service.get_state_at(room_id, last)
    if event_filter is not None and event_filter.lazy_load_members:
        senders = {e.sender for e in [ev, *before, *after]}
        state = [s for k, s in state_map.items() if k[0] == "m.room.member" and k[1] in senders]
    else:
        state = [s for s in state_map.values() if event_filter is None or _allowed(s, event_filter)]
    return Context(
        event=ev,
        before=before,
        after=after,
        start=events_token(first - 1),
        end=events_token(last),
        state=state,
    )
