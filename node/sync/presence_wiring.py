"""Builds the presence manager from ``presence.*`` settings and plugs it in: the
``/sync`` handler reads it, the presence endpoints are registered, and events the
node's users send count as pro-active actions ("Last active ago")."""

from __future__ import annotations

from typing import Any, Sequence

from federation.events.model import Event

from .api import presence as presence_api
from .presence import PresenceManager, load_status_messages


def wire_presence(ctx: Any, service: Any, accounts: Any, rooms: Any) -> PresenceManager:
    cfg = ctx.config.presence
    role_of = accounts.role_of if accounts is not None else (lambda _user_id: None)
    manager = PresenceManager(
        clock=ctx.clock,
        notifier=service.notifier,
        rooms=rooms,
        server_name=ctx.server_name,
        role_of=role_of,
        enabled=bool(cfg.enabled),
        roles=[str(r) for r in cfg.roles],
        idle_ms=int(cfg.idle_ms),
        offline_ms=int(cfg.offline_ms),
        db=ctx.db if cfg.enabled else None,
    )
    service.handler.presence = manager
    presence_api.register(ctx.router, manager)
    if manager.enabled and rooms is not None:

        def on_persisted(evs: Sequence[Event]) -> None:
            for ev in evs:
                manager.note_active(ev.sender)

        rooms.persister.on_persisted.append(on_persisted)
        manager.load(ctx.db.run_sync(load_status_messages))  # start-up only
        manager.start()
    return manager
