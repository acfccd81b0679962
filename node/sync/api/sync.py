"""``GET /_matrix/client/v3/sync`` (client-server API "Syncing", ``sync.yaml``).

Query parameters: ``filter`` (filter ID or inline JSON), ``since``, ``full_state``,
``set_presence`` (``node/sync/presence.py``: a running sync keeps the user online),
``timeout`` (long poll, ms),
``use_state_after`` (not implemented: ``state_after`` is never sent, which the spec tells
clients to read as "not supported").  A client that disconnects ends its long poll.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError

from federation.errors import InvalidParam
from node.stream_tokens import parse_sync_token

from ..handler import SyncParams, WaitHandle

V3 = "/_matrix/client/v3"
MAX_TIMEOUT_MS = 300_000
PRESENCE_VALUES = ("offline", "online", "unavailable")


def _gauge() -> Any:
    try:
        from node.metrics import ACTIVE_SYNCS
    except ImportError:  # pragma: no cover - metrics are optional
        return None
    return ACTIVE_SYNCS


def register(router: Any, service: Any) -> None:
    gauge = _gauge()

    async def sync(req: Any) -> tuple[int, dict]:
        flt = await service.filters.resolve_sync_param(req.user_id, req.query("filter"))
        raw_since = req.query("since")
        since = parse_sync_token(raw_since) if raw_since else None
        full_state = req.query_bool("full_state", False)
        timeout = req.query_int("timeout", 0, minimum=0, maximum=MAX_TIMEOUT_MS)
        presence = req.query("set_presence")
        if presence is not None and presence not in PRESENCE_VALUES:
            raise InvalidParam("set_presence must be offline, online or unavailable")
        params = SyncParams(
            requester=req.requester,
            filter=flt,
            since=since,
            full_state=full_state,
            timeout_ms=timeout or 0,
        )
        waiting = WaitHandle()
        raw = req.raw
        if raw is not None and hasattr(raw, "notifyFinish"):
            if getattr(raw, "_disconnected", False):
                waiting.gone = True
            else:
                raw.notifyFinish().addErrback(lambda _f: waiting.cancel())
        if gauge is not None:
            gauge.inc()
        tracker = service.handler.presence
        if tracker is not None:
            tracker.sync_started(req.user_id, presence)
        try:
            body = await service.handler.sync(params, waiting)
        except CancelledError:
            return 200, {}  # nobody is listening any more
        finally:
            if gauge is not None:
                gauge.dec()
            if tracker is not None:
                tracker.sync_ended(req.user_id)
        return 200, body

    router.add("GET", V3 + "/sync", sync)
