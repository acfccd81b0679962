"""The injected clock: wall time in ms for event timestamps, plus the reactor's scheduling."""

from __future__ import annotations

import time
from typing import Any


class ReactorClock:
    """Real time via the reactor (tests pass ``twisted.internet.task.Clock`` instead).

    It is the ``federation.clock.Clock`` the protocol code takes, plus ``seconds`` and
    ``call_later`` for the node's own timers."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def time_ms(self) -> int:
        # task.Clock has seconds(); the real reactor's seconds() is wall time as well.
        return int(self._reactor.seconds() * 1000)

    def seconds(self) -> float:
        return self._reactor.seconds()

    def call_later(self, seconds: float, fn: Any, *args: Any) -> Any:
        return self._reactor.callLater(seconds, fn, *args)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)
