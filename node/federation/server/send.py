"""``PUT /_matrix/federation/v1/send/{txnId}`` (spec: server-server API "Transactions",
``transactions.yaml``): PDUs and EDUs from the authenticated origin; the response lists a
result per PDU.  Processing and idempotency: ``node/federation/transactions.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport import endpoints as E

from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext


def register(routes: Any, fctx: FederationContext) -> None:
    transactions = fctx.extras["transactions"]

    async def send(req: Any, origin: str, txnId: str) -> tuple[int, dict]:
        return 200, await transactions.on_send(origin, txnId, req.json())

    serve(routes, E.SEND, send)
