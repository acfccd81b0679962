"""Shared pieces of the inbound PDU pipeline (server-server API "Checks performed on
receipt of a PDU"): the logger, limits and small PDU helpers used by every stage."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("parta.federation.ingest")

MAX_STATE_FETCHES = 3          # prev events whose state we ask for, per PDU
_NONE = object()               # "looked up: not stored"
STORE_FAILED = "Internal error while storing the event"   # a PDU result


def _depth(pdu: Any) -> int:
    d = pdu.get("depth") if isinstance(pdu, dict) else None
    return d if isinstance(d, int) and not isinstance(d, bool) else 0


def _domain(user_id: Any) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return user_id.split(":", 1)[1]
    return None
