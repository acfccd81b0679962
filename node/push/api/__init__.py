"""Client-server API handlers of the push area, one module per spec section."""

from __future__ import annotations

from typing import Any

from . import notifications, pushers, pushrules


def register_all(router: Any, service: Any) -> None:
    for module in (pushrules, pushers, notifications):
        module.register(router, service)
