"""Composition of the push area: ``wire(ctx, rooms) -> PushService``.

Called by ``node/app.py`` after the rooms area (whose persister it hooks) and before sync
(which shows the counts and the ``m.push_rules`` account data).
"""

from __future__ import annotations

from typing import Any

from federation.transport.ip_ranges import AddressFilter

from .api import register_all
from .gateway_client import GatewayClient
from .service import PushService


def wire(ctx: Any, rooms: Any = None) -> PushService:
    cfg = ctx.config.push
    service = PushService(
        db=ctx.db,
        clock=ctx.clock,
        server_name=ctx.server_name,
        max_pushers=cfg.max_pushers_per_user,
        notifications_kept_days=cfg.notifications_kept_days,
    )
    service.rules.load_sync()
    service.pushers.load_sync()
    if rooms is not None:
        address_filter = AddressFilter(
            cfg.ip_range_blacklist, cfg.ip_range_whitelist, setting="push.ip_range"
        )
        gateway = GatewayClient(ctx.reactor, address_filter)
        service.attach_rooms(rooms, evaluate=cfg.enabled, gateway=gateway)
        ctx.reactor.callWhenRunning(service.start)
        ctx.reactor.addSystemEventTrigger("before", "shutdown", service.stop)
    register_all(ctx.router, service)
    return service
