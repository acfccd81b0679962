"""The gateway enforces its own roster, tells nodes about new versions and records which
version each school enforces.

* **Own roster**: the gateway is a node, so its federation (``node.federation``) starts with
  an unbound ``RosterPolicy``; ``wire`` binds it to a ``RosterState`` pinned on the roster
  key's public half and filled from ``RosterService``'s latest version.  Every publication
  (``gw.add_roster_listener``: enrolment, key rotation, dashboard revocation, re-signing)
  and, every ``federation.roster_refresh_seconds``, the database itself (versions published
  by the CLI, e.g. ``parta gateway school revoke``) are caught up with ``accept_chain``.
  With the policy bound, the gateway's notary (``/_matrix/key/v2/query``) answers for roster
  members only, with the keys the roster pins (``RosterNotarySource``).
* **Push hints**: after each new version the gateway sends ``PUT /_parta/v1/roster_hint``
  ``{"version": N}`` (X-Matrix signed, federation listener) to every other member; a Parta
  node refreshes at once (``node.federation.roster_refresh``), other servers ignore it.
  At most ``HINT_CONCURRENCY`` requests are in flight, each bounded by ``HINT_TIMEOUT_S``.
* **Acknowledgements**: a node's refresh (``GET /_parta/v1/roster?since=N``) is signed with
  X-Matrix by the node; when the signature verifies with a key the roster pins for its
  origin, ``since`` is the version that school enforces.  ``RosterAcks`` keeps the latest per
  server (in memory, saved to ``<data_dir>/roster_acks.json`` at most every
  ``ACK_FLUSH_SECONDS`` and at shutdown) and serves it as a ``SchoolStatusSource``
  (``roster_version_acked``, ``last_contact_ts``).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterable, Mapping

from twisted.internet import defer, task

from federation.errors import MatrixError
from federation.roster import RosterError, RosterState
from federation.transport import endpoints as E
from federation.transport.xmatrix import verify_request

from .sources import NoStatusSource, SchoolStatus

log = logging.getLogger("parta.gateway.roster")

HINT_CONCURRENCY = 32
HINT_TIMEOUT_S = 10.0
ACK_FILE = "roster_acks.json"
ACK_FLUSH_SECONDS = 30.0


# --- acknowledgements ----------------------------------------------------------------------


class RosterAcks:
    """The roster version each server last reported enforcing (see module docstring)."""

    def __init__(self, path: str | None, clock: Any) -> None:
        self.path = path
        self.clock = clock
        self._acks: dict[str, tuple[int, int]] = {}
        self._dirty = False
        if path is not None:
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:  # type: ignore[arg-type]
                data = json.load(fh)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("event=roster_acks_unreadable path=%s error=%s", self.path, exc)
            return
        for server, entry in data.items() if isinstance(data, dict) else ():
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("version"), int)
                and isinstance(entry.get("ts"), int)
            ):
                self._acks[server] = (entry["version"], entry["ts"])

    def record(self, server_name: str, version: int, ts: int | None = None) -> None:
        self._acks[server_name] = (
            int(version),
            int(ts if ts is not None else self.clock.time_ms()),
        )
        self._dirty = True

    def acked(self, server_name: str) -> tuple[int, int] | None:
        """(version, when) of the server's latest acknowledgement."""
        return self._acks.get(server_name)

    def flush(self) -> None:
        if not self._dirty or self.path is None:
            return
        from node.enrolment_client import _write_atomic

        data = {s: {"version": v, "ts": t} for s, (v, t) in sorted(self._acks.items())}
        try:
            _write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
            self._dirty = False
        except OSError as exc:
            log.warning("event=roster_acks_save_failed path=%s error=%s", self.path, exc)

    async def status_of(self, server_names: Iterable[str]) -> dict[str, SchoolStatus]:
        """``SchoolStatusSource``: only ``roster_version_acked`` and ``last_contact_ts``."""
        out = {}
        for name in server_names:
            ack = self._acks.get(name)
            if ack is not None:
                out[name] = SchoolStatus(last_contact_ts=ack[1], roster_version_acked=ack[0])
        return out

    def note_request(self, req: Any, since: int, policy: Any, server_name: str) -> str | None:
        """Record ``since`` for the origin of ``req`` when it carries a valid X-Matrix
        signature by a key the roster pins for that origin; the origin, or None."""
        raw = getattr(req, "raw", None)
        if raw is None:
            return None
        headers = raw.requestHeaders.getRawHeaders(b"authorization")
        if not headers:
            return None
        now = self.clock.time_ms()

        def pinned(origin: str, key_id: str) -> Any:
            pins = policy.pinned_keys(origin) if policy is not None else None
            pin = (pins or {}).get(key_id)
            if pin is None or (pin.valid_until_ts is not None and pin.valid_until_ts < now):
                return None
            return pin.verify_key

        try:
            origin = verify_request(req.method, raw.uri, None, headers, server_name, pinned)
        except MatrixError as exc:
            log.info("event=roster_ack_refused reason=%s", exc.message)
            return None
        self.record(origin, since, now)
        return origin


# --- the gateway's own roster --------------------------------------------------------------


class GatewayRoster:
    """Binds the node's roster policy to the gateway's published roster, keeps it current
    and sends push hints (see module docstring)."""

    def __init__(
        self, gw: Any, fctx: Any, policy: Any, state: RosterState, *, interval_s: float
    ) -> None:
        self.gw = gw
        self.fctx = fctx
        self.policy = policy
        self.state = state
        self.interval_s = interval_s
        self._poll: task.LoopingCall | None = None
        self._flush: task.LoopingCall | None = None
        self._syncing: defer.Deferred | None = None
        self._again = False
        self.hints_sent: list[defer.Deferred] = []
        policy.add_listener(self._changed)

    # --- catching up -------------------------------------------------------------------
    def sync(self) -> defer.Deferred:
        """Accept every version in the database after the enforced one (coalesced)."""
        if self._syncing is not None:
            self._again = True
            return self._syncing

        async def go() -> None:
            while True:
                self._again = False
                try:
                    docs = await self.gw.roster.since(self.state.version)
                    if docs:
                        self.state.accept_chain(docs, self.gw.clock.time_ms())
                except RosterError as exc:
                    log.error(
                        "event=gateway_roster_refused reason=%s error=%s", exc.reason, exc.message
                    )
                except Exception:  # try again at the next poll
                    log.exception("event=gateway_roster_sync_failed")
                if not self._again:
                    return

        d = defer.ensureDeferred(go())
        self._syncing = d

        def done(result: Any) -> Any:
            self._syncing = None
            return result

        d.addBoth(done)
        return d

    def start(self, reactor: Any) -> None:
        self._poll = task.LoopingCall(self.sync)
        self._poll.clock = reactor
        self._poll.start(self.interval_s, now=True).addErrback(
            lambda f: log.error("event=gateway_roster_poll_died error=%s", f.getErrorMessage())
        )
        acks = self.gw.roster_acks
        if acks is not None:
            self._flush = task.LoopingCall(acks.flush)
            self._flush.clock = reactor
            self._flush.start(ACK_FLUSH_SECONDS, now=False)

    def stop(self) -> None:
        for loop in (self._poll, self._flush):
            if loop is not None and loop.running:
                loop.stop()
        acks = self.gw.roster_acks
        if acks is not None:
            acks.flush()

    # --- push hints --------------------------------------------------------------------
    def _changed(self, old: Any, new: Any) -> None:
        if old is None:
            return
        targets = sorted(n for n in new.servers if n != self.gw.server_name)
        if targets:
            self.hints_sent.append(defer.ensureDeferred(self.send_hints(new.version, targets)))
            del self.hints_sent[:-4]

    async def send_hints(self, version: int, targets: list[str]) -> dict[str, str]:
        """``PUT /_parta/v1/roster_hint`` to each target; outcome per server."""
        client = self.fctx.client
        sem = defer.DeferredSemaphore(HINT_CONCURRENCY)
        results: dict[str, str] = {}

        async def one(server: str) -> None:
            try:
                status, _ = await client.request(
                    server,
                    E.PARTA_ROSTER_HINT.method,
                    E.PARTA_ROSTER_HINT.path(),
                    json_body={"version": version},
                    timeout=HINT_TIMEOUT_S,
                )
                results[server] = str(status)
            except Exception as exc:  # noqa: BLE001 - a hint is best effort
                results[server] = type(exc).__name__

        await defer.gatherResults(
            [sem.run(lambda server: defer.ensureDeferred(one(server)), s) for s in targets],
            consumeErrors=True,
        )
        ok = sum(1 for v in results.values() if v == "200")
        log.info("event=roster_hints_sent version=%s servers=%d ok=%d", version, len(targets), ok)
        return results


def _latest_doc(db: Any) -> Mapping[str, Any] | None:
    from .roster import store

    return db.run_sync(store.latest_doc)


def wire(gw: Any, federation: Any) -> GatewayRoster | None:
    """Bind the gateway's federation policy to its roster (``federation`` is the node's
    ``FederationService``; None when federation is not wired)."""
    from node.federation.roster_policy import RosterPolicy, refresh_interval_s

    data_dir = getattr(gw.config, "data_dir", None)
    gw.roster_acks = RosterAcks(os.path.join(data_dir, ACK_FILE) if data_dir else None, gw.clock)
    if isinstance(gw.status_source, NoStatusSource):
        gw.status_source = gw.roster_acks
    if federation is None:
        return None
    fctx = federation.fctx
    policy = fctx.policy
    if not isinstance(policy, RosterPolicy):
        log.warning("event=gateway_roster_not_enforced policy=%s", type(policy).__name__)
        return None
    state = RosterState(gw.roster.roster_verify_key, gw.server_name)
    doc = _latest_doc(gw.roster.db) if hasattr(gw.roster.db, "run_sync") else None
    if doc is not None:
        state.restore(doc)
    if policy.state is None:  # not bound yet
        policy.bind(state)
    elif policy.state.signer_name != gw.server_name:
        log.warning(
            "event=gateway_roster_not_enforced reason=node_enrolled_elsewhere signer=%s",
            policy.state.signer_name,
        )
        return None
    else:
        state = policy.state
    enforcer = GatewayRoster(gw, fctx, policy, state, interval_s=refresh_interval_s(gw.config))
    gw.roster_enforcer = enforcer
    gw.add_roster_listener(lambda _doc: enforcer.sync())
    reactor = gw.reactor
    if reactor is not None and hasattr(reactor, "callWhenRunning"):
        reactor.callWhenRunning(enforcer.start, reactor)
        reactor.addSystemEventTrigger("before", "shutdown", enforcer.stop)
    return enforcer


def note_roster_request(gw: Any, req: Any, since: int) -> None:
    """Called by ``GET /_parta/v1/roster?since=N``: record a signed refresh as an
    acknowledgement of version ``since`` (unsigned or unverifiable requests are served
    all the same, just not recorded)."""
    acks = gw.roster_acks
    enforcer = gw.roster_enforcer
    if acks is None or enforcer is None:
        return
    acks.note_request(req, since, enforcer.policy, gw.server_name)
