"""Which stretches of which rooms a user's search may read.

Spec: client-server API "Server Side Search": "Only events that the user is allowed to
see will be searched, e.g. it won't include events in rooms that happened after you
left" and "Security considerations": "The server must only return results that the user
has permission to see."  Permission is "Room History Visibility"
(``node/rooms/visibility.py``, the one implementation of its rules).

The searchable events (messages, names, topics) are never membership or history
visibility events, so for them visibility is a step function of the stream ordering that
changes only at the user's membership changes and the room's history visibility changes.
This module turns the two timelines into the open intervals of stream orderings the user
may see, so the database query itself is limited to them: the count, the ranking and the
pages hold nothing the user may not read, and no page is eaten up by rows filtered out
afterwards.  Past the user's last leave (or ban) nothing is searched, even in a
world-readable room.  Rooms a user sees entirely (joined, history never restricted) are
one ``room_id IN (...)`` list; the others become ranges, at most ``MAX_RANGES`` of them
per search (the most recent ones).  Results are checked once more against the same rules
before they are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from node.rooms.visibility import Timeline, VisibilityChecker, _allowed

MAX_RANGES = 200  # (room, low, high) intervals in one query (SQLite expression depth)


@dataclass
class Scope:
    whole_rooms: list[str] = field(default_factory=list)
    # (room_id, low, high): low < stream_ordering < high; None is unbounded
    ranges: list[tuple[str, int | None, int | None]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.whole_rooms and not self.ranges


def visible_ranges(
    user_id: str,
    membership_points: Sequence[tuple[int, str]],
    history_points: Sequence[tuple[int, str]],
) -> list[tuple[int | None, int | None]] | None:
    """None when the user may see every searchable event of the room; else the open
    intervals (low, high) of stream orderings they may see, oldest first."""
    checker = VisibilityChecker(user_id, membership_points, history_points)
    if checker.sees_all:
        return None
    mem = Timeline(membership_points, None)
    hist = Timeline(history_points, "shared")
    points = sorted({p for p, _ in membership_points} | {p for p, _ in history_points})
    last_leave = (
        membership_points[-1][0]
        if membership_points and membership_points[-1][1] in ("leave", "ban")
        else None
    )
    bounds: list[int | None] = [None, *points, None]
    out: list[tuple[int | None, int | None]] = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        if last_leave is not None and low is not None and low >= last_leave:
            continue  # after the last leave
        # Every stream strictly inside (low, high) sees the same values.
        joined_later = ("join" in mem.values) if low is None else mem.any_after(low, "join")
        if _allowed(_in_gap(hist, low, high), _in_gap(mem, low, high), joined_later):
            if out and low is not None and out[-1][1] == low:
                out[-1] = (out[-1][0], high)  # merge across a membership/visibility event
            else:
                out.append((low, high))
    return out


def _in_gap(timeline: Timeline, low: int | None, high: int | None) -> str | None:
    """The timeline's value for the streams strictly between two consecutive points."""
    if high is not None:
        return timeline.before(high)
    if low is not None:
        return timeline.at(low)
    return timeline.default


def build_scope(
    rooms: Sequence[tuple[str, list[tuple[int | None, int | None]] | None]],
) -> Scope:
    """From (room_id, visible_ranges(...)) per room; empty range lists drop the room."""
    scope = Scope()
    for room_id, ranges in rooms:
        if ranges is None:
            scope.whole_rooms.append(room_id)
        else:
            scope.ranges.extend((room_id, low, high) for low, high in ranges)
    if len(scope.ranges) > MAX_RANGES:
        scope.ranges.sort(key=lambda r: r[2] if r[2] is not None else 1 << 62, reverse=True)
        del scope.ranges[MAX_RANGES:]
    return scope
