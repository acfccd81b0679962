"""Composition of the search area: ``wire(ctx, rooms) -> SearchService``.

Makes sure the SQLite FTS5 table exists, hooks the index writer into the rooms
persister's transactions, registers ``POST /search`` and, once the reactor runs, indexes
in the background the events stored before the index existed (``backfill.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from node.rooms.service import RoomService

from .api import search as search_api
from .backfill import run_backfill
from .batch_token import TokenCodec
from .index import ensure_fts, write_index
from .service import SearchService

log = logging.getLogger("parta.search")


def wire(ctx: Any, rooms: RoomService, *, backfill: bool = True) -> SearchService:
    ctx.db.run_sync(ensure_fts)
    rooms.persister.in_transaction.append(write_index)
    # Deterministic (ed25519), so next_batch tokens stay valid across restarts.
    codec = TokenCodec(ctx.signing_key.sign(b"parta search next_batch tokens"))
    service = SearchService(rooms, codec)
    search_api.register(ctx.router, service)
    if backfill:

        def start() -> None:
            d = defer.ensureDeferred(run_backfill(ctx.db))
            d.addErrback(lambda f: log.error("event=search_backfill_failed %s", f.value))

        ctx.reactor.callWhenRunning(start)
    return service
