"""Retry timing for a destination that is down: exponential backoff with jitter.

Spec: server-server API "Transactions" (the sender must retry a transaction until it gets
a 200 before sending another); the spec leaves the retry schedule to the implementation.

Pure: no clock is read and no randomness is drawn here except through the injected
``random`` callable (``() -> float`` in ``[0, 1)``), so tests fix both.

The n-th consecutive failure waits ``min(max_ms, initial_ms * multiplier**(n-1))``
scaled by a factor drawn uniformly from ``[1 - jitter, 1 + jitter]`` (never above
``max_ms * (1 + jitter)``), so servers that lost a peer at the same moment do not all
retry in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class BackoffPolicy:
    initial_ms: int = 1_000
    multiplier: float = 2.0
    max_ms: int = 60_000
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.initial_ms <= 0 or self.max_ms < self.initial_ms:
            raise ValueError("backoff needs 0 < initial_ms <= max_ms")
        if self.multiplier < 1.0:
            raise ValueError("backoff multiplier must be >= 1")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("backoff jitter must be in [0, 1)")

    def base_delay_ms(self, failures: int) -> int:
        """The delay before jitter after ``failures`` consecutive failures (>= 1)."""
        if failures <= 0:
            return 0
        delay = float(self.initial_ms)
        for _ in range(failures - 1):
            delay *= self.multiplier
            if delay >= self.max_ms:
                return self.max_ms
        return int(min(delay, self.max_ms))

    def delay_ms(self, failures: int, random: Callable[[], float]) -> int:
        """The jittered delay after ``failures`` consecutive failures; 0 for none."""
        base = self.base_delay_ms(failures)
        if base == 0:
            return 0
        factor = 1.0 - self.jitter + 2.0 * self.jitter * random()
        return max(1, int(base * factor))


@dataclass(frozen=True)
class RetryState:
    """What the queue stores per destination (``federation_destinations``)."""

    failures: int = 0
    retry_interval_ms: int = 0
    next_retry_ts: int = 0

    def is_backing_off(self, now_ms: int) -> bool:
        return self.failures > 0 and now_ms < self.next_retry_ts

    def after_failure(
        self, policy: BackoffPolicy, now_ms: int, random: Callable[[], float]
    ) -> "RetryState":
        failures = self.failures + 1
        interval = policy.delay_ms(failures, random)
        return RetryState(failures, interval, now_ms + interval)

    @staticmethod
    def after_success() -> "RetryState":
        return RetryState()
