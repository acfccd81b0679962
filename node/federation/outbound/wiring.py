"""Composition of the outbound side: ``wire(fctx, *, rooms, sync) -> FederationSender``.

Called by ``node.federation.wiring.wire`` (the inbound side) with its ``FederationContext``
(``ctx``, ``client``, ``policy``, ...).  Builds the transaction sender and the fan-out,
subscribes to the rooms persister (``on_persisted``), to typing and receipts of the sync
area (``listeners``), and starts (catch-up + resume queued destinations) once the reactor
runs.

Optional settings, read from ``config.federation`` when present (defaults in brackets):
``retry_initial_ms`` [1000], ``retry_max_ms`` [60000], ``retry_multiplier`` [2.0],
``retry_jitter`` [0.2], ``transaction_timeout_s`` [60].
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import defer

from .backoff import BackoffPolicy
from .fanout import FederationSender
from .transaction_sender import TransactionSender

if TYPE_CHECKING:
    from node.federation.context import FederationContext
    from node.sync.service import SyncService

log = logging.getLogger("parta.federation.outbound")


class _AllowAll:
    def allow_outbound(self, destination: str) -> bool:
        return True


def backoff_from_config(config: Any) -> BackoffPolicy:
    fed = getattr(config, "federation", None)
    d = BackoffPolicy()
    return BackoffPolicy(
        initial_ms=int(getattr(fed, "retry_initial_ms", d.initial_ms) or d.initial_ms),
        multiplier=float(getattr(fed, "retry_multiplier", d.multiplier) or d.multiplier),
        max_ms=int(getattr(fed, "retry_max_ms", d.max_ms) or d.max_ms),
        jitter=float(getattr(fed, "retry_jitter", d.jitter)),
    )


def build_sender(
    *,
    db: Any,
    clock: Any,
    client: Any,
    server_name: str,
    rooms: Any,
    policy: Any = None,
    backoff: BackoffPolicy | None = None,
    random: Callable[[], float] | None = None,
    request_timeout: float | None = None,
) -> FederationSender:
    """The sender without any wiring side effects (tests build it this way)."""
    policy = policy or _AllowAll()
    transactions = TransactionSender(
        db=db,
        clock=clock,
        client=client,
        server_name=server_name,
        policy=policy,
        get_events=rooms.get_events,
        backoff=backoff,
        random=random,
        request_timeout=request_timeout,
    )
    return FederationSender(
        db=db,
        clock=clock,
        server_name=server_name,
        rooms=rooms,
        policy=policy,
        transactions=transactions,
    )


def attach(sender: FederationSender, *, rooms: Any, sync: SyncService | None = None) -> None:
    """Subscribe the sender to the persister, typing and receipts."""
    rooms.persister.on_persisted.append(sender.on_persisted)
    if sync is not None:
        sync.typing.listeners.append(sender.on_typing)
        sync.receipts.listeners.append(sender.on_receipt)
        from ..presence import attach_outbound

        attach_outbound(sender, rooms=rooms, sync=sync)  # m.presence EDUs


def wire(
    fctx: FederationContext, *, rooms: Any, sync: SyncService | None = None
) -> FederationSender:
    ctx = fctx.ctx
    fed = getattr(ctx.config, "federation", None)
    timeout = getattr(fed, "transaction_timeout_s", None)
    sender = build_sender(
        db=ctx.db,
        clock=ctx.clock,
        client=fctx.client,
        server_name=ctx.server_name,
        rooms=rooms,
        policy=fctx.policy,
        backoff=backoff_from_config(ctx.config),
        request_timeout=float(timeout) if timeout else None,
    )
    attach(sender, rooms=rooms, sync=sync)

    def start() -> None:
        d = defer.ensureDeferred(sender.start())
        d.addErrback(
            lambda f: log.error(
                "event=federation_sender_start_failed error=%s", f.getErrorMessage()
            )
        )

    ctx.reactor.callWhenRunning(start)
    ctx.reactor.addSystemEventTrigger("before", "shutdown", sender.stop)
    return sender
