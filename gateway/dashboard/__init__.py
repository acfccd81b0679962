"""The city office dashboard: server-rendered HTML served by the gateway under
``/dashboard/`` on the client listener, for city office accounts (role ``office``).

Pages: schools (``pages``), one school, roster history, directory search, enrolment and
revocation (``enrolment``), login/logout (``login``).  No JavaScript and no external
assets; a strict Content-Security-Policy; every value HTML-escaped (``html``); session
cookies HttpOnly + SameSite=Strict with server-side hashed tokens and per-session CSRF
tokens (``sessions``).
"""

from __future__ import annotations

from typing import Any


def register(router: Any, gw: Any) -> None:
    from . import enrolment, login, pages

    login.register(router, gw)
    pages.register(router, gw)
    enrolment.register(router, gw)
