"""``PUT /_matrix/federation/v1/send/{txnId}`` (spec: server-server API "Transactions",
``transactions.yaml``): PDUs and EDUs from the authenticated origin; the response lists a
result per PDU.  Processing and idempotency: ``node/federation/transactions.py``."""

from __future__ import annotations

from typing import Any

from federation.transport import endpoints as E

from ..xmatrix_auth import serve


def register(routes: Any, fctx: Any) -> None:
    transactions = fctx.extras["transactions"]

    async def send(req: Any, origin: str, txnId: str) -> tuple[int, dict]:
        return 200, await transactions.on_send(origin, txnId, req.json())

    serve(routes, E.SEND, send)
