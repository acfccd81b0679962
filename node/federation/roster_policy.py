"""The city roster as this node's server policy, enforced on every node (docs/architecture.md
"The closed federation").

``RosterPolicy`` implements ``policy.ServerPolicy`` on a ``federation.roster.RosterState``:

* ``allow_inbound(origin)`` / ``allow_outbound(destination)``: roster membership, one dict
  lookup (the hot path of every federation request, received PDU and outbound send);
* ``pinned_keys(server)``: a member's keys come ONLY from the roster -- its current
  ``verify_keys`` (valid as long as it stays a member) plus its ``old_verify_keys`` valid up
  to their ``expired_ts``; for a non-member the answer is "pinned to nothing" (``{}``), so
  the key ring never fetches keys of a server we would refuse anyway (no direct fetch, no
  notary);
* ``server_class(server)``: ``school`` / ``city`` / ``external`` (room audiences,
  ``audience.py``), None for non-members;
* ``refusal_message(server)``: what a refused server or client is told.

A policy may be *unbound* (no roster yet): it then allows everything and pins nothing, like
``AllowAllPolicy``.  That is the state of a node that has not enrolled (``federation.roster:
auto``) and, for a moment during start-up, of the gateway, whose own roster
(``RosterService``) is bound by the gateway area (``bind``).  Once bound it never goes back
to open: an expired roster keeps being enforced (never fail open), and keeps admitting its
members (never cut schools off because the gateway is down).

Start-up (``policy_from_config``), ``federation.roster`` in the node's config:

* ``auto`` (default): enforce the roster when the node has enrolled (``roster_key.json`` +
  ``roster.json`` in its data dir, written by ``parta node enrol``), else open federation;
* ``required``: refuse to start without an enrolment (a gateway binds its own roster);
* ``off``: open federation even when enrolled (logged loudly), on a gateway too.

The last good roster is restored from ``roster.json`` on start even when it has expired; a
``roster.json`` that does not verify with the pinned key leaves the node with an empty
roster (nobody admitted, fail closed) until the refresher fetches the chain again.  Every
accepted update rewrites ``roster.json`` atomically (``persist``).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Mapping

from federation.errors import Forbidden
from federation.keys import VerifyKey
from federation.roster import Roster, RosterError, RosterState
from federation.transport.keyring import PinnedKey
from node.startup import StartupError

from .policy import refusal_text

log = logging.getLogger("parta.federation.roster")

MODES = ("auto", "off", "required")
_NOTHING: Mapping[str, PinnedKey] = {}


class RosterStartupError(StartupError):
    """The node cannot start with its roster settings (one line for the operator)."""


def _pins_of(roster: Roster | None) -> dict[str, dict[str, PinnedKey]]:
    """server -> {key_id: PinnedKey}: current keys without expiry, old keys until
    ``expired_ts``.  A key ID listed both ways keeps the current key."""
    out: dict[str, dict[str, PinnedKey]] = {}
    if roster is None:
        return out
    for name, entry in roster.servers.items():
        pins = {kid: PinnedKey(vk, ts) for kid, (vk, ts) in entry.old_verify_keys.items()}
        pins.update({kid: PinnedKey(vk, None) for kid, vk in entry.verify_keys.items()})
        out[name] = pins
    return out


class RosterPolicy:
    """``ServerPolicy`` backed by a ``RosterState`` (see module docstring)."""

    def __init__(
        self,
        state: RosterState | None = None,
        *,
        persist: Callable[[Mapping[str, Any]], None] | None = None,
        gateway_url: str | None = None,
    ) -> None:
        self.state: RosterState | None = None
        self.persist = persist
        self.gateway_url = gateway_url
        self._pins: dict[str, dict[str, PinnedKey]] = {}
        self._listeners: list[Callable[[Roster | None, Roster], None]] = []
        if state is not None:
            self.bind(state)

    # --- binding -----------------------------------------------------------------------
    @property
    def bound(self) -> bool:
        return self.state is not None

    def bind(self, state: RosterState) -> None:
        """Enforce ``state`` from now on (once: a bound policy is never rebound)."""
        if self.state is not None and self.state is not state:
            raise RuntimeError("this policy already enforces a roster")
        self.state = state
        self._pins = _pins_of(state.current)
        state.add_listener(self._changed)
        log.info(
            "event=roster_enforced signer=%s version=%s servers=%d",
            state.signer_name,
            state.version,
            len(state.servers),
        )

    def add_listener(self, fn: Callable[[Roster | None, Roster], None]) -> None:
        """``fn(old, new)`` after each accepted roster version (after persisting it)."""
        self._listeners.append(fn)

    def _changed(self, old: Roster | None, new: Roster) -> None:
        self._pins = _pins_of(new)
        if self.persist is not None:
            try:
                self.persist(new.doc)
            except Exception:  # enforcement already uses the new version
                log.exception("event=roster_persist_failed version=%s", new.version)
        gone = sorted(set(old.servers) - set(new.servers)) if old is not None else []
        added = sorted(set(new.servers) - set(old.servers)) if old is not None else []
        log.info(
            "event=roster_updated version=%s previous=%s servers=%d added=%s removed=%s",
            new.version,
            old.version if old else 0,
            len(new.servers),
            ",".join(added) or "-",
            ",".join(gone) or "-",
        )
        for fn in list(self._listeners):
            try:
                fn(old, new)
            except Exception:  # a listener must not break the update
                log.exception("event=roster_listener_failed")

    # --- ServerPolicy ------------------------------------------------------------------
    def allow_inbound(self, origin: str) -> bool:
        state = self.state
        return state is None or state.is_member(origin)

    def allow_outbound(self, destination: str) -> bool:
        state = self.state
        return state is None or state.is_member(destination)

    def pinned_keys(self, server_name: str) -> Mapping[str, PinnedKey] | None:
        if self.state is None:
            return None
        return self._pins.get(server_name, _NOTHING)

    # --- extras ------------------------------------------------------------------------
    def is_member(self, server_name: str) -> bool:
        return self.state is not None and self.state.is_member(server_name)

    def server_class(self, server_name: str) -> str | None:
        return self.state.server_class(server_name) if self.state is not None else None

    def refusal_message(self, server_name: str) -> str:
        return f"server {server_name} is not in the city roster"

    @property
    def version(self) -> int:
        return self.state.version if self.state is not None else 0

    def is_stale(self, now_ms: int) -> bool:
        return self.state is not None and self.state.is_stale(now_ms)


# --- configuration and start-up ------------------------------------------------------------


def roster_mode(config: Any) -> str:
    mode = getattr(config.federation, "roster", "auto") or "auto"
    if mode not in MODES:
        raise RosterStartupError(
            f"federation.roster must be one of {', '.join(MODES)}, got {mode!r}"
        )
    return mode


def refresh_interval_s(config: Any) -> float:
    value = getattr(config.federation, "roster_refresh_seconds", 60)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise RosterStartupError("federation.roster_refresh_seconds must be a positive number")
    return float(value)


def is_gateway_config(config: Any) -> bool:
    """A gateway's config (its own roster is bound by the gateway area)."""
    return "gateway" in (getattr(config, "extensions", None) or {})


def roster_path(data_dir: str) -> str:
    from node.enrolment_client import ROSTER_FILE

    return os.path.join(data_dir, ROSTER_FILE)


def persist_roster(path: str, doc: Mapping[str, Any]) -> None:
    """Rewrite the last good roster atomically (write a temp file, fsync, rename)."""
    from node.enrolment_client import _write_atomic

    _write_atomic(path, json.dumps(doc, sort_keys=True) + "\n")


def restore_state(key: VerifyKey, signer_name: str, doc: Any, where: str) -> RosterState:
    """A state holding ``doc`` (expired or not); empty (fail closed) if it does not verify."""
    state = RosterState(key, signer_name)
    if doc is None:
        log.warning(
            "event=roster_missing path=%s: admitting nobody until the gateway is reached", where
        )
        return state
    try:
        r = state.restore(doc)
    except RosterError as exc:
        log.error(
            "event=roster_restore_failed path=%s reason=%s error=%s: admitting nobody "
            "until the gateway is reached",
            where,
            exc.reason,
            exc.message,
        )
        return state
    log.info(
        "event=roster_restored version=%s servers=%d valid_until_ts=%s",
        r.version,
        len(r.servers),
        r.valid_until_ts,
    )
    return state


def policy_from_config(config: Any) -> Any:
    """The node's policy at start-up (see module docstring); ``RosterStartupError`` when
    ``federation.roster`` forbids starting."""
    from node.enrolment_client import EnrolmentClientError, load_pinned, load_roster

    mode = roster_mode(config)
    refresh_interval_s(config)
    data_dir = config.data_dir
    try:
        pinned = load_pinned(data_dir)
    except EnrolmentClientError as exc:
        raise RosterStartupError(str(exc)) from None
    if mode == "off":
        if pinned is not None:
            log.warning(
                "event=roster_enforcement_off: this node is enrolled with %s but "
                "federation.roster is 'off': federating with ANY server",
                pinned[1],
            )
        from .policy import AllowAllPolicy

        return AllowAllPolicy()  # not a RosterPolicy: a gateway does not bind it either
    if pinned is None:
        if mode == "required" and not is_gateway_config(config):
            raise RosterStartupError(
                "federation.roster is 'required' but this node has not enrolled with a city "
                "gateway (run 'parta node enrol https://GATEWAY --token TOKEN -c CONFIG')"
            )
        if not is_gateway_config(config):
            log.info(
                "event=roster_not_enrolled: open federation (enrol with a city gateway to close it)"
            )
        return RosterPolicy()
    key, signer, meta = pinned
    path = roster_path(data_dir)
    try:
        doc = load_roster(data_dir)
    except EnrolmentClientError as exc:
        log.error("event=roster_unreadable error=%s", exc)
        doc = None
    state = restore_state(key, signer, doc, path)
    gateway_url = meta.get("gateway_url") if isinstance(meta.get("gateway_url"), str) else None
    return RosterPolicy(state, persist=lambda d: persist_roster(path, d), gateway_url=gateway_url)


# --- the notary for roster members ---------------------------------------------------------


def matches_pins(keys: Any, pins: Mapping[str, PinnedKey]) -> bool:
    """True when every key of a server-keys response (``ServerKeys``) is one the roster
    pins for that server: current keys as current keys, old keys among current or old."""
    if not keys.verify_keys:
        return False
    for key_id, vk in keys.verify_keys.items():
        pin = pins.get(key_id)
        if (
            pin is None
            or pin.valid_until_ts is not None
            or pin.verify_key.public_bytes != vk.public_bytes
        ):
            return False
    for key_id, (vk, _ts) in keys.old_verify_keys.items():
        pin = pins.get(key_id)
        if pin is None or pin.verify_key.public_bytes != vk.public_bytes:
            return False
    return True


class RosterNotarySource:
    """The notary's ``NotaryKeySource`` (``federation.transport.key_server``) on a node that
    enforces a roster: it vouches only for roster members, and only with a member's own
    self-signed key response whose keys are exactly the ones the roster pins (the response
    is fetched from the member itself; a member whose published keys differ from its
    roster entry gets no answer, never a key the roster does not list).  Unbound policy:
    the key ring's answers as they are."""

    def __init__(self, inner: Any, policy: RosterPolicy) -> None:
        self._inner = inner
        self._policy = policy

    def stored_responses(self, server_name: str) -> list:
        if not self._policy.bound:
            return self._inner.stored_responses(server_name)
        pins = self._policy.pinned_keys(server_name)
        if not pins:
            return []
        return [r for r in self._inner.stored_responses(server_name) if matches_pins(r, pins)]

    async def refresh_direct(self, server_name: str, minimum_valid_until_ts: int) -> Any:
        if self._policy.bound and not self._policy.is_member(server_name):
            return None
        fresh = await self._inner.refresh_direct(server_name, minimum_valid_until_ts)
        if fresh is None or not self._policy.bound:
            return fresh
        pins = self._policy.pinned_keys(server_name) or {}
        if matches_pins(fresh, pins):
            return fresh
        log.warning(
            "event=notary_keys_differ_from_roster server=%s published=%s pinned=%s",
            server_name,
            ",".join(sorted(fresh.key_ids())),
            ",".join(sorted(pins)),
        )
        return None


def refusal(policy: Any, server_name: str) -> "Forbidden":
    """The 403 for a server the policy refuses (the roster's wording when there is one)."""
    return Forbidden(
        refusal_text(policy, server_name, f"This server does not federate with {server_name}")
    )
