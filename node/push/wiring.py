"""Composition of the push area: ``wire(ctx, rooms) -> PushService``.

Called by ``node/app.py`` after the rooms area (whose persister it hooks) and before sync
(which shows the counts and the ``m.push_rules`` account data).
"""

from __future__ import annotations

from typing import Any

from .api import register_all
from .service import PushService


def wire(ctx: Any, rooms: Any = None) -> PushService:
    service = PushService(db=ctx.db, clock=ctx.clock, server_name=ctx.server_name)
    service.rules.load_sync()
    if rooms is not None:
        service.attach_rooms(rooms)
    register_all(ctx.router, service)
    return service
