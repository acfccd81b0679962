"""Composition of the federation area: ``wire(ctx, *, accounts, rooms, notifier, sync,
media) -> FederationService`` (called by node/app.py after media).

Builds: our ``KeyServer`` (signing keys + retired keys from the data dir), the outbound
client (TLS policy from config, server name resolution with the override map, the
``ip_range_blacklist``/``ip_range_whitelist`` address check, behind the server policy), the
key ring (pinned keys from the policy, a database cache, direct
fetches, configured notaries), the federation listener's router with X-Matrix
authentication, the state store (shared with the rooms area), the ingest pipeline, the
transaction handler and the endpoints; then the outbound sender
(``node.federation.outbound.wiring``) and membership handshakes
(``node.federation.membership.wiring``), each skipped with a warning while missing.

``FederationService.listen(reactor)`` starts the HTTPS listener (``run`` calls it).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from federation.keys import VerifyKey
from federation.transport.client import FederationHttpClient, WellKnownGetter
from federation.transport.dns_srv import TwistedSrvLookup
from federation.transport.ip_ranges import AddressFilter
from federation.transport.key_server import KeyServer, NotaryService
from federation.transport.keyring import DirectKeyFetcher, KeyRing, NotaryKeyFetcher
from federation.transport.resolution import ServerResolver
from federation.transport.tls import ClientTLSPolicy
from node.http.router import Router

from .acl_check import RoomAclGuard
from .context import FederationContext
from .edus import EduHandler
from .ingest import Ingest
from .key_store import DbKeyStore
from .listener import make_resource
from .policy import PinnedKeysFromPolicy
from .policy_client import PolicyClient
from .server import register_all
from .signing_keys import load_keys
from .transactions import InboundTransactions
from .verifier import SignatureVerifier
from .xmatrix_auth import FederationRoutes, XMatrixAuthenticator

log = logging.getLogger("parta.federation")


class FederationConfigError(Exception):
    pass


@dataclass
class FederationService:
    fctx: FederationContext
    resource: Any  # the federation listener's twisted.web resource
    ingest: Ingest
    transactions: InboundTransactions
    edus: EduHandler
    sender: Any = None  # outbound.FederationSender
    membership: Any = None  # membership.MembershipService
    port: Any = None  # the listening port once ``listen`` ran
    extras: dict = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.fctx.client

    @property
    def keyring(self) -> KeyRing:
        return self.fctx.keyring

    @property
    def state_store(self) -> Any:
        return self.fctx.state_store

    @property
    def listener_enabled(self) -> bool:
        cfg = self.fctx.config
        return bool(cfg.enabled and cfg.listener.tls_certificate_path)

    def listen(self, reactor: Any, site_factory: Any) -> Any:
        """Start the HTTPS listener (None when federation or its certificate is off)."""
        cfg = self.fctx.config
        if not cfg.enabled:
            log.info("event=federation_disabled")
            return None
        if not cfg.listener.tls_certificate_path or not cfg.listener.tls_private_key_path:
            log.warning(
                "event=federation_listener_disabled reason=no_tls_certificate "
                "hint='set federation.listener.tls_certificate_path and "
                "tls_private_key_path (parta node init writes a dev certificate)'"
            )
            return None
        from .listener import listen

        self.port = listen(reactor, cfg.listener, site_factory(self.resource))
        return self.port


def _notary_fetchers(cfg: Any, client: Any, clock: Any) -> list[NotaryKeyFetcher]:
    out = []
    for i, entry in enumerate(cfg.notary_servers or []):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("server_name"), str)
            or not isinstance(entry.get("verify_keys"), dict)
        ):
            raise FederationConfigError(
                f"federation.notary_servers[{i}]: needs server_name and verify_keys "
                "{key_id: base64 key}"
            )
        keys = [VerifyKey.decode(kid, b64) for kid, b64 in entry["verify_keys"].items()]
        out.append(NotaryKeyFetcher(client, clock, entry["server_name"], keys))
    return out


def build_context(
    ctx: Any,
    *,
    rooms: Any,
    policy: Any = None,
    signing_keys: Any = None,
    old_keys: Any = None,
    client: Any = None,
) -> FederationContext:
    """Everything but the endpoints (tests pass their own client / keys)."""
    cfg = ctx.config.federation
    if signing_keys is None:
        signing_keys, old_keys = load_keys(ctx.config)
        # The key the node context signs events with is the first one of the file.
        if signing_keys[0].key_id != ctx.signing_key.key_id:
            signing_keys = [ctx.signing_key] + [
                k for k in signing_keys if k.key_id != ctx.signing_key.key_id
            ]
    key_server = KeyServer(
        ctx.server_name,
        signing_keys,
        ctx.clock,
        old_keys or (),
        key_lifetime_ms=cfg.key_validity_ms,
    )
    if policy is None:  # the city roster when enrolled, else open
        from .roster_policy import policy_from_config

        policy = policy_from_config(ctx.config)
    if client is None:
        tls = ClientTLSPolicy(
            cfg.tls_ca_file, insecure_skip_tls_verify=cfg.insecure_skip_tls_verify
        )
        # Outbound connections only to addresses outside federation.ip_range_blacklist
        # (or in ip_range_whitelist), .well-known fetches included.
        addresses = AddressFilter(cfg.ip_range_blacklist, cfg.ip_range_whitelist)
        resolver = ServerResolver(
            ctx.clock,
            WellKnownGetter(ctx.reactor, tls, address_filter=addresses),
            overrides=cfg.server_overrides or {},
            srv=TwistedSrvLookup(ctx.reactor, cfg.dns_server),  # resolution steps 3.3-5
        )
        client = FederationHttpClient(
            ctx.reactor,
            ctx.server_name,
            lambda: key_server.signing_key,
            resolver,
            tls,
            address_filter=addresses,
        )
        if hasattr(ctx.reactor, "addSystemEventTrigger"):
            # Pooled connections are closed before the reactor stops.
            from twisted.internet import defer

            inner = client
            ctx.reactor.addSystemEventTrigger(
                "before", "shutdown", lambda: defer.ensureDeferred(inner.close())
            )
    client = PolicyClient(client, policy)
    fetchers: list[Any] = [DirectKeyFetcher(client, ctx.clock)]
    fetchers += _notary_fetchers(cfg, client, ctx.clock)
    keyring = KeyRing(
        ctx.clock,
        fetchers,
        pinned=PinnedKeysFromPolicy(policy),
        store=DbKeyStore(ctx.db),
        local=key_server,
    )
    from .roster_policy import RosterNotarySource, RosterPolicy

    notary = NotaryService(
        key_server,
        RosterNotarySource(keyring, policy) if isinstance(policy, RosterPolicy) else keyring,
        ctx.clock,
    )
    router = Router()
    routes = FederationRoutes(
        router,
        XMatrixAuthenticator(ctx.server_name, keyring, policy),
        room_guard=RoomAclGuard(rooms),
    )
    return FederationContext(
        ctx=ctx,
        config=cfg,
        keyring=keyring,
        key_server=key_server,
        notary=notary,
        client=client,
        router=router,
        routes=routes,
        policy=policy,
        state_store=rooms.state_store,
        rooms=rooms,
    )


def wire(
    ctx: Any,
    *,
    accounts: Any = None,
    rooms: Any,
    notifier: Any = None,
    sync: Any = None,
    media: Any = None,
    policy: Any = None,
    e2ee: Any = None,
    **build_kw: Any,
) -> FederationService:
    fctx = build_context(ctx, rooms=rooms, policy=policy, **build_kw)
    fctx.accounts, fctx.sync, fctx.media, fctx.notifier = accounts, sync, media, notifier
    fctx.e2ee = e2ee
    cfg = fctx.config
    ingest = Ingest(
        rooms=rooms,
        state_store=fctx.state_store,
        keyring=fctx.keyring,
        client=fctx.client,
        policy=fctx.policy,
        server_name=ctx.server_name,
        max_missing_events=cfg.max_missing_events,
        verifier=SignatureVerifier(ctx.reactor, cfg.verify_threads),
    )
    fctx.ingest = ingest
    edus = EduHandler(rooms=rooms, sync=sync, presence=cfg.presence, e2ee=e2ee)
    transactions = InboundTransactions(db=ctx.db, clock=ctx.clock, ingest=ingest, edus=edus)
    fctx.extras["transactions"] = transactions
    fctx.extras["edus"] = edus
    register_all(fctx.routes, fctx)
    from .roster_refresh import install as install_roster

    install_roster(fctx)  # roster refresh + push hints (an enrolled node)
    from .role_attestations import install as install_attestations

    install_attestations(fctx)  # staff role attestations (org.parta.role) need the roster
    from node import metrics

    resource = make_resource(fctx.router, observe=metrics.observe_request)
    service = FederationService(
        fctx=fctx, resource=resource, ingest=ingest, transactions=transactions, edus=edus
    )
    if cfg.enabled:
        service.sender = _optional(
            "node.federation.outbound.wiring", "outbound sender", fctx, rooms=rooms, sync=sync
        )
        if service.sender is not None:
            from .outbound.e2ee_link import attach as attach_e2ee

            attach_e2ee(fctx, service.sender)  # remote keys and E2EE EDUs (node/e2ee)
            service.membership = _optional(
                "node.federation.membership.wiring",
                "membership handshakes",
                fctx,
                rooms=rooms,
                accounts=accounts,
                sender=service.sender,
            )
    return service


def _optional(module_name: str, what: str, fctx: FederationContext, **kw: Any) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            log.warning("event=federation_part_missing part=%r module=%s", what, module_name)
            return None
        raise
    return module.wire(fctx, **kw)
