"""Composition of the people area: ``wire(ctx, accounts, rooms) -> PeopleRoomSync``.

Registers ``POST /_parta/v1/claim`` and runs the room sync (``room_sync.py``) once the
reactor runs and every ``SWEEP_SECONDS`` after, so an import made by the CLI while the
node runs reaches the rooms within seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from node.accounts.service import AccountsService
from node.rooms.service import RoomService

from .api import claim as claim_api
from .room_sync import SWEEP_SECONDS, PeopleRoomSync

log = logging.getLogger("parta.people")


def wire(ctx: Any, *, accounts: AccountsService, rooms: RoomService) -> PeopleRoomSync:
    claim_api.register(ctx.router, accounts)
    room_sync = PeopleRoomSync(ctx.db, rooms, ctx.config.server_name)

    def tick() -> None:
        d = defer.ensureDeferred(room_sync.run_once())
        d.addErrback(lambda f: log.warning("event=people_sync_failed error=%s", f.value))
        ctx.clock.call_later(SWEEP_SECONDS, tick)

    ctx.reactor.callWhenRunning(tick)
    return room_sync
