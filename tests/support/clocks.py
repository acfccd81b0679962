"""Fake clocks for code that takes its clock as an argument (no test reads the real time).

``FakeClock`` is a bare ``time_ms`` source the test moves by hand; ``fake_clock`` is the
real ``ReactorClock`` over Twisted's ``task.Clock``, for code that also schedules timers.
"""

from __future__ import annotations

from twisted.internet import task

from node.clock import ReactorClock

T0_MS = 1_700_000_000_000


class FakeClock:
    """Milliseconds that change only when the test sets ``now`` or calls ``advance``."""

    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now = now_ms

    def time_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def fake_clock(start_ms: int) -> ReactorClock:
    """A ``ReactorClock`` over ``task.Clock`` (advance with ``.reactor.advance(seconds)``)."""
    reactor = task.Clock()
    reactor.advance(start_ms / 1000)
    clock = ReactorClock(reactor)
    clock.reactor = reactor  # type: ignore[attr-defined]
    return clock
