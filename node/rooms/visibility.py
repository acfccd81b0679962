"""Which room events a user may see.

Spec: client-server API "Room History Visibility" > "Server behaviour":

  1. If the history_visibility was set to world_readable, allow.
  2. If the user's membership was join, allow.
  3. If history_visibility was set to shared, and the user joined the room at any point
     after the event was sent, allow.
  4. If the user's membership was invite, and the history_visibility was set to invited,
     allow.
  5. Otherwise, deny.

"The rules governing whether a user is allowed to see an event depend on the state of the
room *at that event*" -- we use the state before the event; for
``m.room.history_visibility`` events and the user's own ``m.room.member`` events the
state before *or* after the event may allow it.  A missing or unknown value is ``shared``.

Pure: the caller supplies two timelines of (stream_ordering, value), sorted ascending --
the user's memberships and the room's history visibility values -- and events carrying
their stream ordering (``node.rooms.event_meta``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Sequence

from federation.events.model import Event

from .event_meta import meta
from .ignored import hides

KNOWN = ("world_readable", "shared", "invited", "joined")


class Timeline:
    """A step function stream_ordering -> value, from sorted (stream, value) pairs."""

    def __init__(self, points: Sequence[tuple[int, str]], default: str | None) -> None:
        self.streams = [p[0] for p in points]
        self.values = [p[1] for p in points]
        self.default = default

    def before(self, stream: int) -> str | None:
        """The value in force just before the event at ``stream``."""
        i = bisect_left(self.streams, stream)
        return self.values[i - 1] if i else self.default

    def at(self, stream: int) -> str | None:
        """The value in force just after the event at ``stream``."""
        i = bisect_right(self.streams, stream)
        return self.values[i - 1] if i else self.default

    def any_after(self, stream: int, value: str) -> bool:
        i = bisect_right(self.streams, stream)
        return value in self.values[i:]


def _normalise(hv: str | None) -> str:
    return hv if hv in KNOWN else "shared"


def _allowed(hv: str | None, membership: str | None, joined_later: bool) -> bool:
    hv = _normalise(hv)
    if hv == "world_readable":  # 1.
        return True
    if membership == "join":  # 2.
        return True
    if hv == "shared" and joined_later:  # 3.
        return True
    if membership == "invite" and hv == "invited":  # 4.
        return True
    return False  # 5.


def is_visible(event: Event, user_id: str, memberships: Timeline, history: Timeline) -> bool:
    stream = meta(event).stream_ordering
    if stream is None:  # uncommitted: newest
        stream = 1 << 62
    joined_later = memberships.any_after(stream, "join")
    if _allowed(history.before(stream), memberships.before(stream), joined_later):
        return True
    if event.type == "m.room.history_visibility" and event.state_key == "":
        return _allowed(history.at(stream), memberships.before(stream), joined_later)
    if event.type == "m.room.member" and event.state_key == user_id:
        return _allowed(history.before(stream), memberships.at(stream), joined_later)
    return False


class VisibilityChecker:
    """``visible(event)`` for one user in one room, from the two timelines; with
    ``ignored`` (client-server API "Ignoring Users") the non-state events of those senders
    are not visible either."""

    def __init__(
        self,
        user_id: str,
        membership_points: Sequence[tuple[int, str]],
        history_points: Sequence[tuple[int, str]],
        ignored: frozenset[str] = frozenset(),
    ) -> None:
        self.user_id = user_id
        self.ignored = ignored
        self.memberships = Timeline(membership_points, None)
        self.history = Timeline(history_points, "shared")
        # A joined user in a room whose history was never restricted sees everything
        # (rule 2 while joined, rule 3 before: they joined later).
        self.sees_all = (
            bool(membership_points)
            and membership_points[-1][1] == "join"
            and all(_normalise(v) in ("shared", "world_readable") for _, v in history_points)
        )

    def visible(self, event: Event) -> bool:
        if self.ignored and hides(event, self.ignored):
            return False
        return self.sees_all or is_visible(event, self.user_id, self.memberships, self.history)


def filter_visible(
    events: Sequence[Event],
    user_id: str,
    membership_points: Sequence[tuple[int, str]],
    history_points: Sequence[tuple[int, str]],
) -> list[Event]:
    checker = VisibilityChecker(user_id, membership_points, history_points)
    if checker.sees_all:
        return list(events)
    return [ev for ev in events if checker.visible(ev)]
