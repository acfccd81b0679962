"""One lockout for every credential check (client-server API "Rate limiting").

Passwords are checked by ``/login`` and by the ``m.login.password`` stage of every UIA
endpoint (password change, device deletion, deactivation); registration tokens by the
``m.login.registration_token`` stage and the ``/validity`` endpoint.  If each endpoint kept
its own limit, a guesser would alternate between them for more tries, so all of them go
through this guard:

1. Every attempt takes a token from the per-IP attempt bucket (the ``rate_limits.login_*``
   limit /login always had).
2. Before a credential is checked, a locked-out user or client address gets 429
   ``M_LIMIT_EXCEEDED`` with ``retry_after_ms``, without the check running (a correct
   guess during a lockout must not be told apart from a wrong one).
3. A failed check costs one token from the user's failure bucket (10 at once, then one more
   a minute: slow enough to make guessing hopeless, short enough that the owner is not
   locked out for long) and one from the client address's (100 at once, then one every
   6 s: a school behind one NAT address has many pupils who mistype, but spraying one
   common password across all accounts, or guessing a short registration token, stays slow).

The buckets are ``RateLimiter`` token buckets (bounded memory, injected clock) and follow
``rate_limits.enabled``.
"""

from __future__ import annotations

from typing import Any

from ..ratelimit import LimitExceeded, RateLimiter

USER_FAILURE_BURST = 10
USER_FAILURES_PER_SECOND = 1 / 60
IP_FAILURE_BURST = 100
IP_FAILURES_PER_SECOND = 1 / 6


def ip_key(ip: str | None) -> str:
    return "ip:" + (ip or "?")


class CredentialGuard:
    def __init__(
        self, clock: Any, *, attempts_per_second: float, attempts_burst: int, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self.attempts = RateLimiter(
            clock, per_second=attempts_per_second, burst_count=attempts_burst, enabled=enabled
        )
        self.user_failures = RateLimiter(
            clock,
            per_second=USER_FAILURES_PER_SECOND,
            burst_count=USER_FAILURE_BURST,
            enabled=enabled,
        )
        self.ip_failures = RateLimiter(
            clock, per_second=IP_FAILURES_PER_SECOND, burst_count=IP_FAILURE_BURST, enabled=enabled
        )

    def attempt(self, ip: str | None) -> None:
        """Rule 1: one attempt from ``ip`` (429 when its bucket is empty)."""
        self.attempts.check(ip_key(ip))

    def check_not_locked(self, ip: str | None, user_id: str | None = None) -> None:
        """Rule 2: 429 if the address or the user has used up its failures."""
        if not self.enabled:
            return
        wait = self.ip_failures.retry_after_ms(ip_key(ip))
        if user_id is not None:
            wait = max(wait, self.user_failures.retry_after_ms(user_id))
        if wait > 0:
            raise LimitExceeded(wait)

    def failed(self, ip: str | None, user_id: str | None = None) -> None:
        """Rule 3: count a failed check against the address and the user."""
        for limiter, key in ((self.ip_failures, ip_key(ip)), (self.user_failures, user_id)):
            if key is None:
                continue
            try:
                limiter.check(key)
            except LimitExceeded:
                pass
