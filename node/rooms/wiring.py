"""Composition of the rooms area: ``wire(ctx, accounts, notifier) -> RoomService``.

Creates the service (event creation, batched persistence, in-memory room state), reads
the highest stream ordering, registers the room endpoints on the client API router and
subscribes to profile changes (updated ``m.room.member`` events).
"""

from __future__ import annotations

import logging
from typing import Any

from .api import register_all, report
from .service import RoomService

log = logging.getLogger("parta.rooms")


def wire(ctx: Any, accounts: Any = None, notifier: Any = None) -> RoomService:
    service = RoomService(
        db=ctx.db,
        clock=ctx.clock,
        server_name=ctx.server_name,
        signing_key=ctx.signing_key,
        accounts=accounts,
        notifier=notifier,
        default_room_version=ctx.config.default_room_version,
    )
    try:
        service.persister.start_sync()
        service.state_store.start_sync()
        service.erasure.load_sync()
        service.ignored.load_sync()
    except Exception:  # tables missing: the persister reads it lazily
        log.warning("event=rooms_start_deferred reason=cannot_read_stream_ordering", exc_info=True)
    register_all(ctx.router, service)
    # Reporting content: stored, counted, posted to the moderators' "Reports" room.
    report.register(ctx.router, service, accounts, enabled=ctx.config.rate_limits.enabled)
    if accounts is not None:
        accounts.add_profile_listener(service.on_profile_changed)
    return service
