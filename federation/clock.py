"""The clock the protocol code is given (it never reads the time itself).

Key validity, ``.well-known`` and key caches and notary answers need "now" in milliseconds
since the Unix epoch; the node passes its reactor-driven clock (``node.clock.ReactorClock``)
and tests pass a fake one, so time-dependent behaviour is tested without waiting.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def time_ms(self) -> int: ...
