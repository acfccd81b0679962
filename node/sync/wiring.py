"""Composition of the sync area: ``wire(ctx, accounts, rooms, notifier) -> SyncService``.

The notifier is made first (``node.sync.notifier.make_notifier``) because the rooms area
needs it; this then builds filters, typing, receipts, account data, the user directory and
the ``/sync`` handler around it and registers the endpoints.
"""

from __future__ import annotations

from typing import Any

from node.e2ee.service import E2eeService
from node.push.service import PushService

from . import ignored, upgrade_follow
from .api import old_sync, register_all, tags
from .notifier import SyncNotifier
from .presence_wiring import wire_presence
from .push_link import attach_push
from .service import SyncService


def wire(
    ctx: Any,
    accounts: Any = None,
    rooms: Any = None,
    notifier: SyncNotifier | None = None,
    push: PushService | None = None,
    e2ee: E2eeService | None = None,
) -> SyncService:
    if notifier is None:
        notifier = SyncNotifier(ctx.clock)
    service = SyncService(
        db=ctx.db,
        clock=ctx.clock,
        server_name=ctx.server_name,
        accounts=accounts,
        rooms=rooms,
        notifier=notifier,
    )
    register_all(ctx.router, service)
    if rooms is not None:  # ignored users: node/sync/ignored.py
        ignored.attach(service.account_data, rooms)
    if push is not None:  # counts and m.push_rules from node/push
        attach_push(service, push)
    tags.register(ctx.router, service)  # room tags: the m.tag room account data
    wire_presence(ctx, service, accounts, rooms)  # presence: node/sync/presence.py
    old_sync.register(ctx.router, service)  # the deprecated sync API
    upgrade_follow.attach(service, rooms, ctx.server_name)  # tags follow room upgrades
    service.handler.e2ee = e2ee  # to_device, device_lists, key counts: node/e2ee
    return service
