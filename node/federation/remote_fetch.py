"""Asking another server for events we lack (client side of the read endpoints).

Spec: server-server API "Backfilling and retrieving missing events"
(``POST /get_missing_events/{roomId}``), "Retrieving events" (``GET /event/{eventId}``,
``GET /state/{roomId}?event_id``), "Retrieving event authorisation information"
(``GET /event_auth/{roomId}/{eventId}``).

Every method returns plain PDU dicts (unchecked: the caller runs the checks on receipt of a
PDU) and never raises for a remote failure: it logs and returns nothing, so a dead or
misbehaving server only costs the events it would have supplied.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import MatrixError
from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError

log = logging.getLogger("parta.federation.fetch")

MAX_PDUS = 5000


def _pdu_list(body: Any, key: str) -> list[dict]:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, list):
        return []
    return [p for p in value[:MAX_PDUS] if isinstance(p, dict)]


class RemoteEvents:
    def __init__(self, client: Any, *, timeout: float = 30.0) -> None:
        self.client = client
        self.timeout = timeout

    async def _get(
        self, destination: str, method: str, path: str, body: Any = None, query: Any = None
    ) -> Any:
        try:
            return await self.client.request_ok(
                destination, method, path, json_body=body, query=query, timeout=self.timeout
            )
        except (FederationRequestError, MatrixError) as exc:
            log.info(
                "event=remote_fetch_failed destination=%s path=%s error=%s", destination, path, exc
            )
            return None

    async def get_missing_events(
        self,
        destination: str,
        room_id: str,
        earliest: list[str],
        latest: list[str],
        limit: int,
        min_depth: int = 0,
    ) -> list[dict]:
        body = await self._get(
            destination,
            E.GET_MISSING_EVENTS.method,
            E.GET_MISSING_EVENTS.path(room_id),
            {
                "earliest_events": earliest,
                "latest_events": latest,
                "limit": limit,
                "min_depth": min_depth,
            },
        )
        return _pdu_list(body, "events")

    async def event_auth(self, destination: str, room_id: str, event_id: str) -> list[dict]:
        body = await self._get(
            destination, E.EVENT_AUTH.method, E.EVENT_AUTH.path(room_id, event_id)
        )
        return _pdu_list(body, "auth_chain")

    async def state(
        self, destination: str, room_id: str, event_id: str
    ) -> tuple[list[dict], list[dict]] | None:
        """(state PDUs before ``event_id``, their auth chain), or None."""
        body = await self._get(
            destination, E.STATE.method, E.STATE.path(room_id), query={"event_id": event_id}
        )
        if not isinstance(body, dict):
            return None
        return _pdu_list(body, "pdus"), _pdu_list(body, "auth_chain")

    async def event(self, destination: str, event_id: str) -> dict | None:
        body = await self._get(destination, E.EVENT.method, E.EVENT.path(event_id))
        pdus = _pdu_list(body, "pdus")
        return pdus[0] if pdus else None
