"""Client-server API handlers of the sync area, one module per spec section."""

from __future__ import annotations

from typing import Any

from . import account_data, filter, read_markers, receipts, sync, typing, user_directory


def register_all(router: Any, service: Any) -> None:
    for module in (sync, filter, typing, receipts, read_markers, account_data, user_directory):
        module.register(router, service)
