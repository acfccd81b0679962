"""Keeping an enrolled node's roster current: refreshed periodically and on a push hint,
each new version's signature and hash chain verified, a rollback to an older version refused
(docs/architecture.md "The closed federation").

``RosterRefresher`` asks the gateway every ``federation.roster_refresh_seconds`` (default
60 s; the clock is injected, tests use ``task.Clock``) for every version after the one it
enforces::

    GET {gateway_url}/_parta/v1/roster?since=N   ->  {"versions": [...], "limited", ...}

and hands them to ``RosterState.accept_chain`` (signature by the pinned roster key, hash
chain, no gap, newest unexpired).  The request is signed with ``Authorization: X-Matrix``
(origin = this node, destination = the roster's signer, i.e. the gateway), so the gateway
learns which version each school enforces: after accepting an update the refresher asks
once more with the new ``since``, which acknowledges it.

A refused update (bad signature, modified document, rollback, fork, broken chain, gap,
expired) keeps the last good roster, logs a WARNING and increments
``parta_roster_updates_rejected_total{reason}``; an unreachable gateway increments
``parta_roster_refresh_failures_total``.  ``parta_roster_version`` and ``parta_roster_stale``
(1 while the enforced roster is past ``valid_until_ts``) are computed when scraped.

Push hints: the gateway sends ``PUT /_parta/v1/roster_hint`` (X-Matrix signed, on the
federation listener) to every member when it publishes.  Only the roster's signer may send
one, and its content is never trusted: it merely triggers an immediate refresh (coalesced
with one already running).

``install(fctx)`` wires all of this for the node's ``RosterPolicy`` (called by
``node.federation.wiring``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import orjson
from prometheus_client import Counter, Gauge
from twisted.internet import defer, task

from federation.errors import Forbidden
from federation.roster import RosterError
from federation.transport import endpoints as E
from federation.transport.client import ResponseTooLarge, read_body
from federation.transport.xmatrix import sign_request
from node import metrics

from .roster_policy import RosterPolicy, RosterStartupError, refresh_interval_s
from .xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext

log = logging.getLogger("parta.federation.roster")

ROSTER_PATH = "/_parta/v1/roster"
MAX_PAGES = 20  # ?since= pages of up to 500 versions in one refresh
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
REQUEST_TIMEOUT_S = 30.0

# --- metrics (the node's registry, served on the metrics listener) ---------------------------
ROSTER_VERSION = Gauge(
    "parta_roster_version",
    "Version of the city roster this server enforces (0: none)",
    registry=metrics.REGISTRY,
)
ROSTER_STALE = Gauge(
    "parta_roster_stale",
    "1 when the enforced roster is past its valid_until_ts (still enforced: the last good version)",
    registry=metrics.REGISTRY,
)
ROSTER_ENFORCED = Gauge(
    "parta_roster_enforced",
    "1 when federation is closed by a city roster",
    registry=metrics.REGISTRY,
)
ROSTER_REJECTED = Counter(
    "parta_roster_updates_rejected",
    "Roster updates refused (signature, chain, rollback, ...), by reason",
    ["reason"],
    registry=metrics.REGISTRY,
)
ROSTER_REFRESH_FAILURES = Counter(
    "parta_roster_refresh_failures",
    "Roster refreshes that could not reach the gateway or got no usable answer",
    registry=metrics.REGISTRY,
)
ROSTER_LAST_SUCCESS = Gauge(
    "parta_roster_last_refresh_success_seconds",
    "When a roster refresh last got an answer from the gateway (Unix time)",
    registry=metrics.REGISTRY,
)


def watch_metrics(policy: RosterPolicy, clock: Any) -> None:
    """Point the scrape-time gauges at ``policy`` (one policy per process)."""
    ROSTER_VERSION.set_function(lambda: policy.version)
    ROSTER_ENFORCED.set_function(lambda: 1 if policy.bound else 0)
    ROSTER_STALE.set_function(lambda: 1 if policy.is_stale(clock.time_ms()) else 0)


class GatewayUnavailable(Exception):
    """The gateway could not be asked, or did not answer usefully."""


Fetch = Callable[[int], Awaitable[Mapping[str, Any]]]


# --- the refresher -------------------------------------------------------------------------


class RosterRefresher:
    """Periodic and on-demand ``accept_chain`` from the gateway (see module docstring).

    ``fetch(since)`` returns the gateway's ``?since=`` answer; ``reactor`` provides
    ``callLater``/``seconds`` (a ``task.Clock`` in tests); ``now_ms()`` the wall time used
    for expiry checks.
    """

    def __init__(
        self,
        policy: RosterPolicy,
        fetch: Fetch,
        *,
        reactor: Any,
        now_ms: Callable[[], int],
        interval_s: float = 60.0,
    ) -> None:
        if policy.state is None:
            raise ValueError("the refresher needs a bound roster policy")
        self.policy = policy
        self.state = policy.state
        self._fetch = fetch
        self._reactor = reactor
        self._now_ms = now_ms
        self.interval_s = interval_s
        self._loop: task.LoopingCall | None = None
        self._running: defer.Deferred | None = None
        self._again = False
        self.last_outcome: str | None = None

    # --- scheduling ------------------------------------------------------------------------
    def start(self, *, now: bool = True) -> None:
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self._reactor
        d = self._loop.start(self.interval_s, now=now)
        d.addErrback(
            lambda f: log.error("event=roster_refresh_loop_died error=%s", f.getErrorMessage())
        )

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def hint(self) -> defer.Deferred:
        """Refresh now (a push hint).  While a refresh runs, one more follows it."""
        return self.refresh()

    def refresh(self) -> defer.Deferred:
        """One refresh (coalesced); the Deferred fires with its outcome:
        ``updated`` | ``unchanged`` | ``rejected`` | ``unreachable``.  Never fails."""
        if self._running is not None:
            self._again = True
            return self._running
        d = defer.ensureDeferred(self._refresh_loop())
        self._running = d

        def done(result: Any) -> Any:
            self._running = None
            return result

        d.addBoth(done)
        return d

    async def _refresh_loop(self) -> str:
        outcome = await self._refresh_once()
        while self._again:
            self._again = False
            outcome = await self._refresh_once()
        return outcome

    # --- one refresh -----------------------------------------------------------------------
    async def _get(self, since: int) -> dict:
        try:
            body = await self._fetch(since)
        except GatewayUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any transport failure is "unreachable"
            raise GatewayUnavailable(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(body, Mapping) or not isinstance(body.get("versions"), list):
            raise GatewayUnavailable("the answer has no 'versions' list")
        return dict(body)

    async def _refresh_once(self) -> str:
        state = self.state
        since = state.version
        try:
            docs: list = []
            after = since
            for _page in range(MAX_PAGES):
                body = await self._get(after)
                page = body["versions"]
                docs += page
                versions = [d.get("version") for d in page if isinstance(d, Mapping)]
                last: list[int] = [v for v in versions if isinstance(v, int)]
                if not body.get("limited") or not last or max(last) <= after:
                    break
                after = max(last)
        except GatewayUnavailable as exc:
            ROSTER_REFRESH_FAILURES.inc()
            log.warning(
                "event=roster_refresh_failed gateway=%s error=%s keeping_version=%s",
                self.policy.gateway_url,
                exc,
                state.version,
            )
            self.last_outcome = "unreachable"
            return "unreachable"
        ROSTER_LAST_SUCCESS.set(self._now_ms() / 1000.0)
        if not docs:
            self.last_outcome = "unchanged"
            return "unchanged"
        try:
            older = [
                d["version"]
                for d in docs
                if isinstance(d, Mapping)
                and isinstance(d.get("version"), int)
                and d["version"] < since
            ]
            if older:
                raise RosterError(
                    f"asked for versions after {since}, got version(s) {older[:5]} (rollback)",
                    reason="rollback",
                )
            new = state.accept_chain(docs, self._now_ms())
        except RosterError as exc:
            ROSTER_REJECTED.labels(exc.reason).inc()
            log.warning(
                "event=roster_update_rejected reason=%s error=%s keeping_version=%s",
                exc.reason,
                exc.message,
                state.version,
            )
            self.last_outcome = "rejected"
            return "rejected"
        if new.version == since:  # only the version we already hold
            self.last_outcome = "unchanged"
            return "unchanged"
        # Acknowledge: the gateway records the version a signed request says we enforce.
        try:
            await self._get(new.version)
        except GatewayUnavailable as exc:
            log.info("event=roster_ack_failed version=%s error=%s", new.version, exc)
        self.last_outcome = "updated"
        return "updated"


# --- talking to the gateway ----------------------------------------------------------------


def _headers(auth: str) -> dict[bytes | str, list[bytes | str]]:
    """The roster request's headers, typed as treq takes them."""
    return {
        b"Authorization": [auth.encode("ascii")],
        b"User-Agent": [b"Parta/0.1 (roster refresh)"],
    }


class GatewayRosterClient:
    """``GET {gateway_url}/_parta/v1/roster?since=N`` with an X-Matrix signature.

    ``gateway_url`` is the gateway's client API base URL (``roster_key.json``); https is
    verified against ``ca_file`` (the city's CA; default the system store), plain http is
    only for loopback (enrolment refused anything else).
    """

    def __init__(
        self,
        reactor: Any,
        gateway_url: str,
        *,
        origin: str,
        destination: str,
        signing_key: Callable[[], Any],
        ca_file: str | None = None,
        insecure: bool = False,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        from twisted.web.client import Agent, HTTPConnectionPool

        parts = urlsplit(gateway_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RosterStartupError(
                f"roster_key.json: gateway_url {gateway_url!r} is not an http(s) URL (enrol again)"
            )
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.origin = origin
        self.destination = destination
        self._signing_key = signing_key
        self._reactor = reactor
        self.timeout = timeout
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = 2
        if parts.scheme == "https":
            from federation.transport.tls import ClientTLSPolicy

            policy = _HttpsPolicy(ClientTLSPolicy(ca_file, insecure_skip_tls_verify=insecure))
            self._agent = Agent(
                reactor, contextFactory=policy, pool=self.pool, connectTimeout=timeout
            )
        else:
            self._agent = Agent(reactor, pool=self.pool, connectTimeout=timeout)

    async def fetch_since(self, since: int) -> dict:
        import treq

        target = f"{self.prefix}{ROSTER_PATH}?since={int(since)}"
        auth = sign_request("GET", target, self.origin, self.destination, self._signing_key(), None)
        response = await treq.get(
            self.base + target,
            agent=self._agent,
            timeout=self.timeout,
            reactor=self._reactor,
            allow_redirects=False,
            headers=_headers(auth),
        )
        try:
            raw = await read_body(response, MAX_RESPONSE_BYTES)
        except ResponseTooLarge:
            raise GatewayUnavailable("the answer is too large") from None
        if response.code != 200:
            raise GatewayUnavailable(f"HTTP {response.code}: {raw[:200]!r}")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayUnavailable("the answer is not JSON") from None

    async def close(self) -> None:
        await self.pool.closeCachedConnections()


class _HttpsPolicy:
    """``IPolicyForHTTPS`` from the federation's ``ClientTLSPolicy``."""

    def __init__(self, tls: Any) -> None:
        from twisted.web.iweb import IPolicyForHTTPS
        from zope.interface import directlyProvides

        directlyProvides(self, IPolicyForHTTPS)
        self._tls = tls

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return self._tls.creator_for(hostname.decode("ascii").strip("[]"))


# --- wiring --------------------------------------------------------------------------------


def register_hint_route(
    routes: Any, policy: RosterPolicy, refresher: "RosterRefresher | None"
) -> None:
    """``PUT /_parta/v1/roster_hint`` on the federation listener (X-Matrix authenticated)."""

    async def roster_hint(req: Any, origin: str) -> tuple[int, dict]:
        state = policy.state
        if state is None or refresher is None:
            raise Forbidden(
                "This server does not take roster hints (it has not enrolled with a city gateway)"
            )
        if origin != state.signer_name:
            raise Forbidden(f"Only the city gateway {state.signer_name} sends roster hints")
        # The body (a version number) is not trusted: the refresh fetches and verifies.
        refresher.hint()
        return 200, {}

    serve(routes, E.PARTA_ROSTER_HINT, roster_hint)


def install(fctx: FederationContext) -> "RosterRefresher | None":
    """Roster enforcement extras for the node's federation: metrics, the push-hint route,
    and (for an enrolled node) the refresher, started once the reactor runs."""
    policy = fctx.policy
    if not isinstance(policy, RosterPolicy):
        return None
    ctx = fctx.ctx
    watch_metrics(policy, ctx.clock)
    refresher = None
    if policy.state is not None and policy.gateway_url:  # bound to a roster
        cfg = fctx.config
        client = GatewayRosterClient(
            ctx.reactor,
            policy.gateway_url,
            origin=ctx.server_name,
            destination=policy.state.signer_name,
            signing_key=lambda: fctx.signing_key,
            ca_file=cfg.tls_ca_file,
            insecure=cfg.insecure_skip_tls_verify,
        )
        refresher = RosterRefresher(
            policy,
            client.fetch_since,
            reactor=ctx.reactor,
            now_ms=ctx.clock.time_ms,
            interval_s=refresh_interval_s(ctx.config),
        )
        fctx.extras["roster_client"] = client
        reactor = ctx.reactor
        if hasattr(reactor, "callWhenRunning"):
            reactor.callWhenRunning(refresher.start)
            reactor.addSystemEventTrigger("before", "shutdown", refresher.stop)
            reactor.addSystemEventTrigger(
                "before", "shutdown", lambda: defer.ensureDeferred(client.close())
            )
    elif policy.bound:
        log.warning(
            "event=roster_not_refreshed reason=no_gateway_url: roster_key.json names "
            "no gateway_url; enrol again to get roster updates"
        )
    fctx.extras["roster_refresher"] = refresher
    register_hint_route(fctx.routes, policy, refresher)
    return refresher
