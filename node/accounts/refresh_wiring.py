"""Wiring of refresh tokens (``refresh.py``): the service and the ``/refresh`` route.

A module of its own because the route module imports ``refresh.py`` too (``/login`` and
``/register`` add refresh tokens), so ``refresh.py`` may not import the routes."""

from __future__ import annotations

from typing import Any

from ..config import AuthConfig
from .api import refresh as refresh_api
from .refresh import RefreshTokens


def setup(ctx: Any, accounts: Any) -> RefreshTokens:
    auth = getattr(ctx.config, "auth", None) or AuthConfig()
    tokens = RefreshTokens(accounts, auth.access_token_lifetime_ms)
    accounts.refresh_tokens = tokens
    refresh_api.register(ctx.router, accounts)
    return tokens
