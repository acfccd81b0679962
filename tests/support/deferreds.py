"""Driving async code that completes synchronously (no reactor turns needed).

With ``support.db.InlineDB`` and fake clocks, a service coroutine never really waits, so a
test can run it to the end in one call and get its result or its exception.
"""

from __future__ import annotations

from typing import Any, Coroutine

from twisted.internet import defer


def result_of(coro_or_deferred: Coroutine[Any, Any, Any] | defer.Deferred) -> Any:
    """The result of a coroutine/Deferred that completes synchronously (re-raises)."""
    d = (
        coro_or_deferred
        if isinstance(coro_or_deferred, defer.Deferred)
        else defer.ensureDeferred(coro_or_deferred)
    )
    out: list = []
    d.addBoth(out.append)
    assert out, "did not complete synchronously"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def pending(coro: Coroutine[Any, Any, Any]) -> defer.Deferred:
    """Start a coroutine; return its Deferred (may still be waiting)."""
    return defer.ensureDeferred(coro)
