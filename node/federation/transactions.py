"""Inbound transactions: ``PUT /_matrix/federation/v1/send/{txnId}`` processing.

Spec: server-server API "Transactions" (at most 50 PDUs and 100 EDUs; "The sending server
must wait and retry for a 200 OK response before sending a transaction with a different
txnId"), ``transactions.yaml`` (the response lists a result per PDU, "even in the event of
one or more PDUs failing to be processed").

Idempotency per ``(origin, txnId)``: the response of a processed transaction is stored
(``federation_inbound_txns``) and a retry gets it back without any processing, so nothing
is persisted or delivered twice (PDUs are also deduplicated by event ID, EDUs only by
this).  The same transaction arriving again while it is still being processed waits for
that first run.  Rows older than ``KEEP_MS`` are pruned now and then.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer

from federation.errors import BadJSON

from . import fed_metrics, store
from .ingest import STORE_FAILED

log = logging.getLogger("parta.federation.txn")

MAX_PDUS = 50
MAX_EDUS = 100
KEEP_MS = 7 * 24 * 3600 * 1000
PRUNE_EVERY = 500


def parse_transaction(body: Any) -> tuple[list, list]:
    """(pdus, edus) of a transaction body; ``BadJSON`` (400) if it breaks the limits."""
    if not isinstance(body, dict):
        raise BadJSON("Transaction must be a JSON object")
    pdus = body.get("pdus", [])
    edus = body.get("edus", [])
    if pdus is None:
        pdus = []
    if edus is None:
        edus = []
    if not isinstance(pdus, list):
        raise BadJSON("'pdus' must be an array")
    if not isinstance(edus, list):
        raise BadJSON("'edus' must be an array")
    if len(pdus) > MAX_PDUS:
        raise BadJSON(f"Too many PDUs in the transaction ({len(pdus)} > {MAX_PDUS})")
    if len(edus) > MAX_EDUS:
        raise BadJSON(f"Too many EDUs in the transaction ({len(edus)} > {MAX_EDUS})")
    return pdus, edus


class InboundTransactions:
    def __init__(self, *, db: Any, clock: Any, ingest: Any, edus: Any) -> None:
        self.db = db
        self.clock = clock
        self.ingest = ingest
        self.edus = edus
        self._inflight: dict[tuple[str, str], list[defer.Deferred]] = {}
        self._count = 0
        self.processed = 0
        self.replayed = 0

    async def on_send(self, origin: str, txn_id: str, body: Any) -> dict:
        pdus, edus = parse_transaction(body)
        key = (origin, txn_id)
        waiters = self._inflight.get(key)
        if waiters is not None:
            d: defer.Deferred = defer.Deferred()
            waiters.append(d)
            self.replayed += 1
            fed_metrics.transaction("replayed")
            return await d
        self._inflight[key] = waiters = []
        try:
            response = await self._process(origin, txn_id, pdus, edus)
        except Exception as exc:
            for d in self._inflight.pop(key, []):
                d.errback(exc)
            raise
        for d in self._inflight.pop(key, []):
            d.callback(response)
        return response

    async def _process(self, origin: str, txn_id: str, pdus: list, edus: list) -> dict:
        """Checks 1-3 first (no side effects), then ONE lookup for a stored response (a
        replay after a restart) and the PDUs' status, then steps 4-6 with the persister
        held, so the transaction's events and its response commit in one write."""
        prepared = await self.ingest.prepare_pdus(origin, pdus)
        stored, statuses = await self.db.read(
            store.txn_response_and_event_status, origin, txn_id, prepared.event_ids()
        )
        if stored is not None:
            self.replayed += 1
            fed_metrics.transaction("replayed")
            return stored
        persister = self.ingest.rooms.persister
        persister.hold()
        try:
            results, writes = await self.ingest.process_prepared(prepared, statuses)
            for edu in edus:
                try:
                    await self.edus.handle(origin, edu)
                except Exception:  # EDUs are best effort
                    log.exception("event=edu_failed origin=%s", origin)
            response = {"pdus": results}
            now = self.clock.time_ms()
            saved = persister.enqueue_extra(
                store.save_txn_response, origin, txn_id, {"pdus": dict(results)}, now
            )
        finally:
            persister.release()
        await self.ingest.written(results, writes, origin)
        try:
            await saved
        except Exception:  # not recorded: a retry is processed again
            log.exception("event=txn_response_save_failed origin=%s txn_id=%s", origin, txn_id)
        else:
            if any(r.get("error") == STORE_FAILED for r in results.values()):
                # An event failed to store in an earlier write than the response: do not
                # answer a retry from the record, process it again.
                await self.db.run(store.forget_txn_response, origin, txn_id)
        self.processed += 1
        fed_metrics.transaction("processed")
        self._count += 1
        if self._count >= PRUNE_EVERY:
            self._count = 0
            try:
                await self.db.run(store.prune_txns, now - KEEP_MS)
            except Exception:
                log.exception("event=txn_prune_failed")
        log.info(
            "event=txn_received origin=%s txn_id=%s pdus=%d edus=%d errors=%d",
            origin,
            txn_id,
            len(pdus),
            len(edus),
            sum(1 for r in results.values() if "error" in r),
        )
        return response
