"""Paging through an event's children and a room's threads.

Spec: client-server API "Relationships API" (``relations.yaml``:
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidrelationseventid)
and "Querying threads in a room" (``threads_list.yaml``).

``/relations`` tokens are the room's pagination tokens (``node.rooms.pagination``: ``s<N>``
is the position just after the event with stream ordering N), so a ``/messages`` ``start``
or a ``/sync`` ``next_batch`` is a valid ``from`` too, as the spec asks.  ``dir=b`` returns
children with ``to < stream <= from`` newest first; ``dir=f`` ``from < stream <= to`` oldest
first.  ``/threads`` tokens are ``t<N>``: threads whose latest reply is below N.

Both answer only what the user may see: the parent event must be visible to them
(otherwise 404 as for an unknown event), and every child or thread root is checked
against the history visibility rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.errors import InvalidParam, MatrixError, NotFound
from federation.events.model import Event

from .access import may_read_history
from .event_meta import meta
from .pagination import _position, _token
from .relations_store import MAX_DEPTH, children_page, threads_page
from .visibility import VisibilityChecker

MAX_ROUNDS = 5  # database pages per request while invisible rows are skipped


@dataclass
class ChildPage:
    chunk: list[Event]
    next_batch: str | None
    prev_batch: str | None
    recursion_depth: int | None


async def _checker(service: Any, room_id: str, user_id: str) -> VisibilityChecker:
    mem, hv = await service.visibility_timelines(room_id, user_id)
    return VisibilityChecker(user_id, mem, hv, service.ignored.of(user_id))


async def visible_parent(service: Any, user_id: str, room_id: str, event_id: str) -> Event:
    """The parent event if ``user_id`` may see it; 404 otherwise (the response must not
    tell an unknown event from one the user may not read)."""
    try:
        await may_read_history(service, user_id, room_id)
    except MatrixError:
        raise NotFound("Event not found.") from None
    ev = await service.get_event(event_id)
    if (
        ev is None
        or ev.room_id != room_id
        or ev.rejected_reason is not None
        or meta(ev).stream_ordering is None
    ):
        raise NotFound("Event not found.")
    checker = await _checker(service, room_id, user_id)
    if not checker.visible(ev):
        raise NotFound("Event not found.")
    return ev


async def children(
    service: Any,
    user_id: str,
    room_id: str,
    event_id: str,
    *,
    rel_type: str | None,
    event_type: str | None,
    from_token: str | None,
    to_token: str | None,
    direction: str,
    limit: int,
    recurse: bool | None,
) -> ChildPage:
    """One page of ``GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]``."""
    if direction not in ("b", "f"):
        raise InvalidParam("'dir' must be 'b' or 'f'")
    start = _position(from_token) if from_token is not None else None
    end = _position(to_token) if to_token is not None else None
    await visible_parent(service, user_id, room_id, event_id)
    checker = await _checker(service, room_id, user_id)
    if direction == "b":
        after, upto = end, start
    else:
        after, upto = start, end
    chunk: list[Event] = []
    more = False
    for _ in range(MAX_ROUNDS):
        want = limit - len(chunk)
        rows = await service.db.read(
            children_page,
            room_id,
            event_id,
            rel_type,
            event_type,
            recurse=bool(recurse),
            after=after,
            upto=upto,
            direction=direction,
            limit=want + 1,
        )
        more = len(rows) > want
        rows = rows[:want]
        evs = await service.get_events([eid for eid, _ in rows])
        for eid, stream in rows:
            ev = evs.get(eid)
            if ev is not None and ev.room_id == room_id and checker.visible(ev):
                chunk.append(ev)
            if direction == "b":
                upto = stream - 1
            else:
                after = stream
        if not more or len(chunk) >= limit:
            break
    cursor = upto if direction == "b" else after
    next_batch = _token(cursor) if more and cursor is not None else None
    return ChildPage(
        chunk=chunk,
        next_batch=next_batch,
        prev_batch=from_token,
        recursion_depth=None if recurse is None else (MAX_DEPTH if recurse else 1),
    )


def parse_thread_token(token: str) -> int:
    body = token[1:] if isinstance(token, str) and token.startswith("t") else ""
    digits = body[1:] if body.startswith("-") else body
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise InvalidParam("Unknown pagination token")
    return int(body)


@dataclass
class ThreadPage:
    chunk: list[Event]
    next_batch: str | None


async def threads(
    service: Any,
    user_id: str,
    room_id: str,
    *,
    include: str,
    from_token: str | None,
    limit: int,
) -> ThreadPage:
    """One page of ``GET /rooms/{roomId}/threads``: thread roots the user may see, most
    recently active first.  403 for users who may not read the room."""
    if include not in ("all", "participated"):
        raise InvalidParam("'include' must be 'all' or 'participated'")
    before = parse_thread_token(from_token) if from_token is not None else None
    await may_read_history(service, user_id, room_id)
    checker = await _checker(service, room_id, user_id)
    participant = user_id if include == "participated" else None
    chunk: list[Event] = []
    more = False
    for _ in range(MAX_ROUNDS):
        want = limit - len(chunk)
        rows = await service.db.read(
            threads_page, room_id, before=before, limit=want + 1, participant=participant
        )
        more = len(rows) > want
        rows = rows[:want]
        evs = await service.get_events([eid for eid, _ in rows])
        for eid, latest in rows:
            ev = evs.get(eid)
            if (
                ev is not None
                and ev.room_id == room_id
                and ev.rejected_reason is None
                and meta(ev).stream_ordering is not None
                and checker.visible(ev)
            ):
                chunk.append(ev)
            before = latest
        if not more or len(chunk) >= limit:
            break
    return ThreadPage(chunk=chunk, next_batch=f"t{before}" if more else None)
