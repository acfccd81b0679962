"""Accounts area: users, devices, access tokens, login/register/logout, profile, capabilities,
versions and well-known (client-server API).  ``wiring.wire(ctx)`` returns ``AccountsService``."""
