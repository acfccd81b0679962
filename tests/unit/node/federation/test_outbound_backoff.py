"""Exponential backoff with jitter (pure: injected randomness, no clock read)."""

from __future__ import annotations

import pytest

from node.federation.outbound.backoff import BackoffPolicy, RetryState


def test_base_delays_double_then_cap():
    p = BackoffPolicy(initial_ms=1000, multiplier=2, max_ms=10_000, jitter=0.2)
    assert [p.base_delay_ms(n) for n in range(0, 7)] == [0, 1000, 2000, 4000, 8000, 10_000, 10_000]
    assert p.base_delay_ms(10_000) == 10_000  # no overflow for long outages


def test_jitter_bounds_from_injected_random():
    p = BackoffPolicy(initial_ms=1000, multiplier=2, max_ms=60_000, jitter=0.2)
    assert p.delay_ms(3, lambda: 0.0) == 3200  # 4000 * 0.8
    assert p.delay_ms(3, lambda: 0.5) == 4000
    assert 4799 <= p.delay_ms(3, lambda: 0.999999) <= 4800
    no_jitter = BackoffPolicy(initial_ms=500, jitter=0.0)
    assert no_jitter.delay_ms(2, lambda: 0.9) == 1000


def test_jitter_spreads_servers_apart():
    import random

    rnd = random.Random(7)
    p = BackoffPolicy()
    delays = {p.delay_ms(4, rnd.random) for _ in range(50)}
    assert len(delays) > 10 and min(delays) >= 6400 and max(delays) <= 9600


def test_retry_state_progression():
    p = BackoffPolicy(initial_ms=1000, jitter=0.0)
    s = RetryState()
    assert not s.is_backing_off(0)
    s = s.after_failure(p, 10_000, lambda: 0.5)
    assert (s.failures, s.retry_interval_ms, s.next_retry_ts) == (1, 1000, 11_000)
    assert s.is_backing_off(10_999) and not s.is_backing_off(11_000)
    s = s.after_failure(p, 11_000, lambda: 0.5)
    assert (s.failures, s.next_retry_ts) == (2, 13_000)
    assert RetryState.after_success() == RetryState()


@pytest.mark.parametrize(
    "kw",
    [dict(initial_ms=0), dict(initial_ms=10, max_ms=5), dict(multiplier=0.5), dict(jitter=1.0)],
)
def test_invalid_policies_refused(kw):
    with pytest.raises(ValueError):
        BackoffPolicy(**kw)
