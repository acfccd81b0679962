"""Token-bucket rate limiter with an injected clock (client-server "Rate limiting")."""

from __future__ import annotations

import asyncio

import pytest

from node.http.request import Requester
from node.ratelimit import LimitExceeded, RateLimiter, make_rate_limit_hook, request_key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def seconds(self) -> float:
        return self.t


def test_burst_then_limited_with_retry_after():
    clock = Clock()
    rl = RateLimiter(clock, per_second=2.0, burst_count=3)
    for _ in range(3):
        rl.check("@a:s")
    with pytest.raises(LimitExceeded) as exc:
        rl.check("@a:s")
    assert exc.value.http_status == 429
    body = exc.value.to_json()
    assert body["errcode"] == "M_LIMIT_EXCEEDED" and body["retry_after_ms"] == 500


def test_refill_over_time_and_cap_at_burst():
    clock = Clock()
    rl = RateLimiter(clock, per_second=1.0, burst_count=2)
    rl.check("k")
    rl.check("k")
    clock.t += 0.25
    with pytest.raises(LimitExceeded) as exc:
        rl.check("k")
    assert exc.value.retry_after_ms == 750
    clock.t += 0.75
    rl.check("k")  # one token back after 1 s
    clock.t += 3600  # long idle: only burst_count tokens, not 3600
    rl.check("k")
    rl.check("k")
    with pytest.raises(LimitExceeded):
        rl.check("k")


def test_keys_are_independent():
    rl = RateLimiter(Clock(), per_second=1.0, burst_count=1)
    rl.check("@a:s")
    rl.check("@b:s")
    with pytest.raises(LimitExceeded):
        rl.check("@a:s")


def test_rejected_requests_do_not_drain_further():
    clock = Clock()
    rl = RateLimiter(clock, per_second=1.0, burst_count=1)
    rl.check("k")
    for _ in range(5):
        with pytest.raises(LimitExceeded):
            rl.check("k")
    clock.t += 1.0
    rl.check("k")  # hammering while limited costs nothing extra


def test_disabled_limiter_never_limits():
    rl = RateLimiter(Clock(), per_second=1.0, burst_count=1, enabled=False)
    for _ in range(100):
        rl.check("k")


def test_invalid_parameters():
    with pytest.raises(ValueError):
        RateLimiter(Clock(), per_second=0, burst_count=1)
    with pytest.raises(ValueError):
        RateLimiter(Clock(), per_second=1, burst_count=0)


def test_prune_keeps_memory_bounded():
    clock = Clock()
    rl = RateLimiter(clock, per_second=1.0, burst_count=1)
    rl.MAX_KEYS = 10
    for i in range(10):
        rl.check(f"ip:{i}")
    clock.t += 5  # all buckets refilled: prunable
    rl.check("ip:new")
    assert len(rl._buckets) <= 2


def test_memory_bounded_even_when_no_bucket_is_full():
    """Keys that never refill in time (e.g. failures for made-up user names) are capped too."""
    clock = Clock()
    rl = RateLimiter(clock, per_second=0.001, burst_count=1)
    rl.MAX_KEYS = 100
    for i in range(1000):
        try:
            rl.check(f"@guess{i}:s")
        except LimitExceeded:
            pass
    assert len(rl._buckets) <= 100
    assert "@guess999:s" in rl._buckets  # the newest keys are the ones kept


class Req:
    def __init__(self, requester=None, client_ip="10.0.0.1"):
        self.requester = requester
        self.client_ip = client_ip


def test_hook_keys_by_user_or_ip():
    assert request_key(Req(Requester("@a:s", "D"))) == "@a:s"
    assert request_key(Req()) == "ip:10.0.0.1"
    rl = RateLimiter(Clock(), per_second=1.0, burst_count=1)
    hook = make_rate_limit_hook(rl)
    asyncio.run(hook(Req(Requester("@a:s", "D"))))
    asyncio.run(hook(Req()))  # different key: allowed
    with pytest.raises(LimitExceeded):
        asyncio.run(hook(Req(Requester("@a:s", "OTHER"))))  # same user, other device
