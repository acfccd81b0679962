"""Helpers for the federation transport tests (not a test module)."""

from __future__ import annotations

from twisted.internet import defer

from federation.keys import SigningKey


class FakeClock:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now = now_ms

    def time_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def key(version: str, fill: int) -> SigningKey:
    return SigningKey(version, bytes([fill]) * 32)


def result_of(coro_or_deferred):
    """The result of a coroutine/Deferred that completes synchronously (re-raises)."""
    d = coro_or_deferred if isinstance(coro_or_deferred, defer.Deferred) \
        else defer.ensureDeferred(coro_or_deferred)
    out: list = []
    d.addBoth(out.append)
    assert out, "did not complete synchronously"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def pending(coro) -> defer.Deferred:
    """Start a coroutine; return its Deferred (may still be waiting)."""
    return defer.ensureDeferred(coro)
