"""Client-server API endpoints of the rooms area, one module per spec section.

Each module exposes ``register(router, service)``.
"""

from __future__ import annotations

from typing import Any

from . import (
    aliases,
    context,
    create_room,
    event,
    hierarchy,
    members,
    membership,
    messages,
    mutual_rooms,
    public_rooms,
    redact,
    relations,
    send,
    state,
    summary,
    threads,
    timestamp,
    upgrade,
)

MODULES = (
    create_room,
    membership,
    send,
    state,
    members,
    messages,
    event,
    context,
    redact,
    aliases,
    public_rooms,
    hierarchy,
    mutual_rooms,
    summary,
    timestamp,
    relations,
    threads,
    upgrade,
)


def register_all(router: Any, service: Any) -> None:
    for module in MODULES:
        module.register(router, service)
