"""Composition of the E2EE area: ``wire(ctx, *, accounts, rooms, notifier) ->
E2eeService`` (called by node/app.py after rooms, before sync).

Registers the client-server endpoints, subscribes to the rooms persister (membership
changes are device-list changes) and starts the sweep of deleted devices' keys.  The sync
area reads ``sync_section`` for every ``/sync``; the federation area serves our keys from
it and hands over remote look-ups and EDU sending with ``attach_federation``.
"""

from __future__ import annotations

from typing import Any

from .api import register_all
from .service import E2eeService


def wire(ctx: Any, *, accounts: Any, rooms: Any, notifier: Any) -> E2eeService:
    service = E2eeService(
        db=ctx.db,
        clock=ctx.clock,
        server_name=ctx.server_name,
        rooms=rooms,
        notifier=notifier,
        accounts=accounts,
    )
    rooms.persister.on_persisted.append(service.on_persisted)
    # A deleted device's keys go, and co-members hear of it, as soon as it is deleted.
    accounts.device_deleted.append(service.sweep.drop_deleted)
    reactor = getattr(ctx, "reactor", None)
    if reactor is not None and hasattr(reactor, "callWhenRunning"):
        reactor.callWhenRunning(service.sweep.start)  # deleted devices' keys (sweep.py)
        reactor.addSystemEventTrigger("before", "shutdown", service.sweep.stop)
    register_all(ctx.router, service)
    return service
