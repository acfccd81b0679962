"""Accounts wiring: ``wire(ctx) -> AccountsService`` (creates the service, adds its routes)."""

from __future__ import annotations

from typing import Any

from ..ratelimit import RateLimiter
from .api import register_all
from .service import AccountsService
from .uia import UserInteractiveAuth


def wire(ctx: Any) -> AccountsService:
    accounts = AccountsService(ctx)
    limits = ctx.config.rate_limits
    accounts.login_limiter = RateLimiter(ctx.clock, per_second=limits.login_per_second,
                                         burst_count=limits.login_burst_count,
                                         enabled=limits.enabled)

    def on_discard(session: Any) -> None:
        token = session.data.get("registration_token")
        if token is not None:
            accounts.release_registration_token(token)

    accounts.uia = UserInteractiveAuth(ctx.clock.time_ms, on_discard=on_discard)
    accounts.load()
    register_all(ctx.router, accounts)
    return accounts
