"""Client-server API handlers of the E2EE area, one module per spec section."""

from __future__ import annotations

from typing import Any

from . import cross_signing, keys, room_keys, to_device


def register_all(router: Any, service: Any) -> None:
    for module in (keys, to_device, cross_signing, room_keys):
        module.register(router, service)
