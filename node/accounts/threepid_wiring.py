"""Wiring of contact addresses, e-mail validation, account moderation and login tokens.

``setup`` runs before the accounts routes are added (the password and registration handlers
use the validation sessions), ``register_routes`` after.  A config without an ``email``
section (bare test configs) means e-mail is off.
"""

from __future__ import annotations

from typing import Any

from ..config import EmailConfig
from .api import admin_accounts, login_token, threepid, threepid_validation
from .login_tokens import LoginTokens
from .moderation import AccountModeration
from .service import AccountsService
from .threepid_mailer import Mailer, SmtpMailer
from .threepid_sessions import ValidationSessions


def setup(ctx: Any, accounts: AccountsService, mailer: Mailer | None = None) -> None:
    email = getattr(ctx.config, "email", None) or EmailConfig()
    if mailer is None and email.smtp_host:
        mailer = SmtpMailer(ctx.reactor, email, ctx.config.server_name)
    accounts.threepid_sessions = ValidationSessions(
        db=ctx.db,
        clock=ctx.clock,
        mailer=mailer,
        server_name=ctx.config.server_name,
        public_baseurl=ctx.config.public_baseurl,
        lifetime_ms=int(email.token_lifetime_s) * 1000,
        registration=email.registration,
        rate_limits_enabled=ctx.config.rate_limits.enabled,
    )
    accounts.moderation = AccountModeration(ctx.db, ctx.clock.time_ms)
    accounts.moderation.load()
    accounts.login_tokens = LoginTokens(ctx.clock.time_ms)


def register_routes(router: Any, accounts: AccountsService) -> None:
    for module in (threepid_validation, threepid, admin_accounts, login_token):
        module.register(router, accounts)
