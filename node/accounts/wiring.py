"""Accounts wiring: ``wire(ctx) -> AccountsService`` (creates the service, adds its routes)."""

from __future__ import annotations

from typing import Any

from ..ratelimit import RateLimiter
from . import threepid_wiring
from .api import admin_whois, openid, register_all, thirdparty, turn
from .guard import CredentialGuard
from .refresh_wiring import setup as setup_refresh
from .service import AccountsService
from .uia import UserInteractiveAuth


def wire(ctx: Any) -> AccountsService:
    accounts = AccountsService(ctx)
    limits = ctx.config.rate_limits
    accounts.guard = CredentialGuard(
        ctx.clock,
        attempts_per_second=limits.login_per_second,
        attempts_burst=limits.login_burst_count,
        enabled=limits.enabled,
    )
    accounts.login_limiter = accounts.guard.attempts
    # UIA sessions: created at most as fast as login attempts, per user or client address.
    creation = RateLimiter(
        ctx.clock,
        per_second=limits.login_per_second,
        burst_count=limits.login_burst_count,
        enabled=limits.enabled,
    )
    accounts.uia = UserInteractiveAuth(ctx.clock.time_ms, creation_limiter=creation)
    accounts.load()
    setup_refresh(ctx, accounts)  # refresh tokens and POST /refresh
    threepid_wiring.setup(ctx, accounts)  # e-mail 3PIDs, locks, login tokens
    register_all(ctx.router, accounts)
    threepid_wiring.register_routes(ctx.router, accounts)
    for module in (openid, turn, thirdparty, admin_whois):  # small client-server operations
        module.register(ctx.router, accounts)
    return accounts
