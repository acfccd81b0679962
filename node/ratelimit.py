"""Rate limiting (client-server "Rate limiting"): token buckets, 429 ``M_LIMIT_EXCEEDED``.

Each key (a user ID, or ``ip:<address>`` for unauthenticated requests) owns a bucket holding
up to ``burst_count`` tokens that refills at ``per_second``.  A request takes one token; an
empty bucket answers 429 with ``retry_after_ms`` = time until one token is back.  The clock is
injected (anything with ``seconds()``), so tests drive time by hand.
"""

from __future__ import annotations

import math
from itertools import islice
from typing import Any, Protocol

from federation.errors import MatrixError


class SecondsClock(Protocol):
    def seconds(self) -> float: ...


class LimitExceeded(MatrixError):
    errcode = "M_LIMIT_EXCEEDED"
    http_status = 429

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__("Too many requests", retry_after_ms=retry_after_ms)
        self.retry_after_ms = retry_after_ms


class RateLimiter:
    """Token buckets per key.  ``check(key)`` takes a token or raises ``LimitExceeded``."""

    MAX_KEYS = 10_000  # tracked keys at most (full buckets go first, then oldest)

    def __init__(
        self, clock: SecondsClock, *, per_second: float, burst_count: int, enabled: bool = True
    ) -> None:
        if per_second <= 0 or burst_count < 1:
            raise ValueError("rate limit needs per_second > 0 and burst_count >= 1")
        self.clock = clock
        self.rate = float(per_second)
        self.burst = float(burst_count)
        self.enabled = enabled
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at seconds)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - at) * self.rate)

    def retry_after_ms(self, key: str) -> int:
        """0 if a request for ``key`` would pass now, else ms until it would."""
        level = self._level(key, self.clock.seconds())
        if level >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - level) / self.rate * 1000))

    def check(self, key: str) -> None:
        if not self.enabled:
            return
        now = self.clock.seconds()
        level = self._level(key, now)
        if level < 1.0:
            self._buckets[key] = (level, now)
            raise LimitExceeded(max(1, math.ceil((1.0 - level) / self.rate * 1000)))
        self._buckets[key] = (level - 1.0, now)
        if len(self._buckets) > self.MAX_KEYS:
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget full buckets (they equal no bucket); if that is not enough -- e.g. failure
        buckets of many made-up user names -- forget the oldest-created down to 90 % of
        ``MAX_KEYS``, so memory stays bounded and the O(n) prune runs at most once per
        ``MAX_KEYS // 10`` new keys."""
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]
        excess = len(self._buckets) - (self.MAX_KEYS - self.MAX_KEYS // 10)
        if excess > 0:
            for key in list(islice(self._buckets, excess)):
                del self._buckets[key]


def request_key(req: Any) -> str:
    """The bucket key of a request: its user, or its client address when unauthenticated."""
    requester = getattr(req, "requester", None)
    if requester is not None:
        return requester.user_id
    return "ip:" + (getattr(req, "client_ip", None) or "?")


def make_rate_limit_hook(limiter: RateLimiter):
    """The ``ApiResource(rate_limit=...)`` hook for routes marked ``rate_limited=True``."""

    async def hook(req: Any) -> None:
        limiter.check(request_key(req))

    return hook
