"""The key ring: remote servers' verify keys, fetched, validated and cached with their
validity (spec: server-server API "Retrieving server keys"; rooms v5+ "Signing key validity
period"; appendix "Checking for a Signature" step 3, "look up the verification key").

Lookups:

* ``get_verify_key_cached(server, key_id, valid_at_ms=None)`` - synchronous, for the hot
  path (event signature checks, request auth).  None unless the key is known and valid at
  ``valid_at_ms`` (default: now).  ``lookup_at(ts)`` / ``event_key_lookup(pdu)`` give the
  ``get_verify_key(server, key_id)`` callable ``federation.events.checks`` expects, bound to
  the event's ``origin_server_ts`` ("valid_until_ts ... at least as large as the
  origin_server_ts for the event being validated").
* ``await get_verify_key(server, key_id, minimum_valid_until_ts=None)`` - fetches when the
  key is unknown or not valid long enough; raises ``KeyNotFound`` (401 ``M_UNAUTHORIZED``).
* ``await ensure_keys(...)`` / ``await ensure_event_keys(pdu)`` - prefetch for a batch.

Rules:

1. Our own server's keys come from the ``KeyServer`` (never fetched over HTTP).
2. Pinned keys (``PinnedKeySource``, e.g. the city roster): when a server has pinned keys,
   only those are used; nothing is fetched and any other key ID is refused.
3. Otherwise the cache; then (once per server at a time: concurrent lookups share one fetch)
   the optional persistent ``KeyStore``, then each fetcher in order (``DirectKeyFetcher``,
   ``NotaryKeyFetcher``...) until the key is valid until ``minimum_valid_until_ts``.
4. A response is accepted only if it names the server asked about and is self-signed by it
   with the keys it lists (``key_responses.parse_server_keys``); a notary's answer must in
   addition carry the notary's signature by a configured notary key.
5. Validity: current keys until ``min(valid_until_ts, received + 7 days)``, old keys until
   ``expired_ts``; when several responses list a key, the latest validity wins.
6. A key not obtainable is remembered for ``negative_ttl_ms`` (default 30 s) so a flood of
   requests signed with an unknown key does not become a flood of fetches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Mapping, Protocol, Sequence

from twisted.internet import defer

from ..clock import Clock
from ..errors import Unauthorized
from ..keys import VerifyKey
from .coalesce import Coalescer
from .endpoints import KEY_QUERY, KEY_SERVER
from .key_responses import InvalidKeyResponse, ServerKeys, check_signed_by, parse_server_keys
from .key_server import KeyServer

log = logging.getLogger(__name__)

FOREVER = 2**63 - 1
DEFAULT_NEGATIVE_TTL_MS = 30_000


class KeyNotFound(Unauthorized):
    """No key with that ID is known (or valid long enough) for the server."""


# --- boundaries ----------------------------------------------------------------------------


class FederationRequester(Protocol):
    """The part of ``FederationHttpClient`` the fetchers use."""

    async def request(
        self,
        destination: str,
        method: str,
        path: str,
        json_body: Any = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]: ...


class KeyFetcher(Protocol):
    name: str
    is_direct: bool

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[ServerKeys]: ...


@dataclass(frozen=True)
class PinnedKey:
    verify_key: VerifyKey
    valid_until_ts: int | None = None  # None: no expiry


class PinnedKeySource(Protocol):
    def pinned_keys(self, server_name: str) -> Mapping[str, PinnedKey] | None:
        """The pinned keys (key_id -> PinnedKey) of ``server_name``, or None if not pinned."""


class StaticPinnedKeys:
    """A ``PinnedKeySource`` held in memory (the roster loader fills it)."""

    def __init__(self, pins: Mapping[str, Iterable[PinnedKey | VerifyKey]] | None = None) -> None:
        self._pins: dict[str, dict[str, PinnedKey]] = {}
        for server, keys in (pins or {}).items():
            self.set_server(server, keys)

    def set_server(self, server_name: str, keys: Iterable[PinnedKey | VerifyKey]) -> None:
        pins = [k if isinstance(k, PinnedKey) else PinnedKey(k) for k in keys]
        self._pins[server_name] = {p.verify_key.key_id: p for p in pins}

    def remove_server(self, server_name: str) -> None:
        self._pins.pop(server_name, None)

    def pinned_keys(self, server_name: str) -> Mapping[str, PinnedKey] | None:
        return self._pins.get(server_name)


class KeyStore(Protocol):
    """Optional persistence of accepted responses (the node backs it with its database)."""

    async def load_server_keys(self, server_name: str) -> list[tuple[dict[str, Any], int]]:
        """Saved ``(response, received_at_ms)`` pairs for ``server_name``."""

    async def save_server_keys(
        self, server_name: str, response: dict[str, Any], received_at_ms: int
    ) -> None: ...


# --- fetchers ------------------------------------------------------------------------------


class KeyFetchError(Exception):
    pass


class DirectKeyFetcher:
    """``GET https://<server>/_matrix/key/v2/server``."""

    name = "direct"
    is_direct = True

    def __init__(self, http: FederationRequester, clock: Clock, *, timeout: float = 10.0) -> None:
        self._http = http
        self._clock = clock
        self._timeout = timeout

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[ServerKeys]:
        status, body = await self._http.request(
            server_name, KEY_SERVER.method, KEY_SERVER.path(), timeout=self._timeout
        )
        if status != 200:
            raise KeyFetchError(f"{server_name}: key request answered HTTP {status}")
        return [parse_server_keys(body, server_name, self._clock.time_ms())]


class NotaryKeyFetcher:
    """``POST https://<notary>/_matrix/key/v2/query`` with the notary's key(s) configured."""

    is_direct = False

    def __init__(
        self,
        http: FederationRequester,
        clock: Clock,
        notary_server_name: str,
        notary_keys: Iterable[VerifyKey],
        *,
        timeout: float = 10.0,
    ) -> None:
        self._http = http
        self._clock = clock
        self.notary = notary_server_name
        self.name = f"notary:{notary_server_name}"
        self._notary_keys = {k.key_id: k for k in notary_keys}
        if not self._notary_keys:
            raise ValueError(f"notary {notary_server_name}: at least one key is required")
        self._timeout = timeout

    async def fetch(
        self, server_name: str, key_ids: Collection[str], minimum_valid_until_ts: int
    ) -> list[ServerKeys]:
        body = {
            "server_keys": {
                server_name: {
                    k: {"minimum_valid_until_ts": minimum_valid_until_ts} for k in key_ids
                }
            }
        }
        status, resp = await self._http.request(
            self.notary, KEY_QUERY.method, KEY_QUERY.path(), json_body=body, timeout=self._timeout
        )
        if status != 200:
            raise KeyFetchError(f"notary {self.notary}: key query answered HTTP {status}")
        entries = resp.get("server_keys") if isinstance(resp, Mapping) else None
        if not isinstance(entries, list):
            raise KeyFetchError(f"notary {self.notary}: 'server_keys' is not an array")
        now = self._clock.time_ms()
        out = []
        for entry in entries:
            if not isinstance(entry, Mapping) or entry.get("server_name") != server_name:
                continue
            try:
                check_signed_by(
                    entry,
                    self.notary,
                    self._notary_keys,
                    f"Notary {self.notary}'s answer for {server_name}",
                )
                out.append(parse_server_keys(entry, server_name, now))
            except InvalidKeyResponse as exc:
                log.warning(
                    "event=notary_entry_refused notary=%s server=%s reason=%s",
                    self.notary,
                    server_name,
                    exc.message,
                )
        return out


# --- the ring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    key: VerifyKey
    valid_until: int
    source: str


class KeyRing:
    MAX_RESPONSES_PER_SERVER = 4
    MAX_NEGATIVE_ENTRIES = 10_000

    def __init__(
        self,
        clock: Clock,
        fetchers: Sequence[KeyFetcher] = (),
        pinned: PinnedKeySource | None = None,
        store: KeyStore | None = None,
        *,
        local: KeyServer | None = None,
        negative_ttl_ms: int = DEFAULT_NEGATIVE_TTL_MS,
    ) -> None:
        self._clock = clock
        self.fetchers = list(fetchers)
        self._pinned = pinned
        self._store = store
        self._local = local
        self._negative_ttl = negative_ttl_ms
        self._keys: dict[str, dict[str, _Entry]] = {}
        self._responses: dict[str, list[ServerKeys]] = {}
        self._negative: dict[tuple[str, str], int] = {}
        self._inflight = Coalescer()
        self._store_loaded: set[str] = set()

    # --- synchronous lookups -------------------------------------------------------------
    def _find(self, server: str, key_id: str) -> tuple[VerifyKey, int] | None:
        """(key, valid_until) from the authoritative source for ``server``, ignoring time."""
        if self._local is not None and server == self._local.server_name:
            for k in self._local.signing_keys:
                if k.key_id == key_id:
                    return k.verify_key, FOREVER
            for o in self._local.old_keys:
                if o.verify_key.key_id == key_id:
                    return o.verify_key, o.expired_ts
            return None
        if self._pinned is not None:
            pins = self._pinned.pinned_keys(server)
            if pins is not None:
                pin = pins.get(key_id)
                if pin is None:
                    return None
                return pin.verify_key, (
                    FOREVER if pin.valid_until_ts is None else pin.valid_until_ts
                )
        entry = self._keys.get(server, {}).get(key_id)
        return (entry.key, entry.valid_until) if entry is not None else None

    def _is_authoritative(self, server: str) -> bool:
        """True when the cache is never consulted/fetched for ``server`` (local/pinned)."""
        if self._local is not None and server == self._local.server_name:
            return True
        return self._pinned is not None and self._pinned.pinned_keys(server) is not None

    def get_verify_key_cached(
        self, server_name: str, key_id: str, valid_at_ms: int | None = None
    ) -> VerifyKey | None:
        """The key if known and valid at ``valid_at_ms`` (default now), else None."""
        found = self._find(server_name, key_id)
        if found is None:
            return None
        at = self._clock.time_ms() if valid_at_ms is None else valid_at_ms
        return found[0] if at <= found[1] else None

    def lookup_at(self, valid_at_ms: int) -> Callable[[str, str], VerifyKey | None]:
        return lambda server, key_id: self.get_verify_key_cached(server, key_id, valid_at_ms)

    def event_key_lookup(self, pdu: Mapping[str, Any]) -> Callable[[str, str], VerifyKey | None]:
        """``get_verify_key`` for ``check_received_event``: keys valid at the event's time."""
        ts = pdu.get("origin_server_ts")
        return self.lookup_at(
            ts if isinstance(ts, int) and not isinstance(ts, bool) else self._clock.time_ms()
        )

    # --- asynchronous lookups ------------------------------------------------------------
    async def get_verify_key(
        self, server_name: str, key_id: str, minimum_valid_until_ts: int | None = None
    ) -> VerifyKey:
        """The key valid until ``minimum_valid_until_ts`` (default now), fetching if needed."""
        now = self._clock.time_ms()
        need = now if minimum_valid_until_ts is None else minimum_valid_until_ts
        key = self.get_verify_key_cached(server_name, key_id, need)
        if key is not None:
            return key
        if self._is_authoritative(server_name):
            which = (
                "our own"
                if self._local is not None and server_name == self._local.server_name
                else "its pinned"
            )
            raise KeyNotFound(
                f"Key {key_id} of {server_name} is not one of {which} keys valid until {need}"
            )
        neg = self._negative.get((server_name, key_id))
        if neg is not None and neg > now:
            raise KeyNotFound(
                f"Key {key_id} of {server_name} could not be obtained recently; not retrying yet"
            )
        await self._fetch(server_name, [key_id], need)
        key = self.get_verify_key_cached(server_name, key_id, need)
        if key is not None:
            self._negative.pop((server_name, key_id), None)
            return key
        self._remember_missing(server_name, key_id)
        if self._find(server_name, key_id) is not None:
            raise KeyNotFound(f"Key {key_id} of {server_name} is not valid until {need}")
        raise KeyNotFound(f"Key {key_id} of {server_name} could not be obtained")

    def _remember_missing(self, server_name: str, key_id: str) -> None:
        now = self._clock.time_ms()
        if len(self._negative) >= self.MAX_NEGATIVE_ENTRIES:  # bound attacker-chosen keys
            self._negative = {k: t for k, t in self._negative.items() if t > now}
            if len(self._negative) >= self.MAX_NEGATIVE_ENTRIES:
                self._negative.clear()
        self._negative[(server_name, key_id)] = now + self._negative_ttl

    def key_source(self, server_name: str, key_id: str) -> str | None:
        """Where a cached remote key came from (``direct``, ``notary:<name>``, ``store``)."""
        entry = self._keys.get(server_name, {}).get(key_id)
        return entry.source if entry is not None else None

    async def get_verify_key_or_none(
        self, server_name: str, key_id: str, minimum_valid_until_ts: int | None = None
    ) -> VerifyKey | None:
        try:
            return await self.get_verify_key(server_name, key_id, minimum_valid_until_ts)
        except KeyNotFound:
            return None

    async def ensure_keys(self, wanted: Iterable[tuple[str, str, int | None]]) -> None:
        """Try to obtain each ``(server, key_id, minimum_valid_until_ts)``; never raises
        ``KeyNotFound`` (the later synchronous check reports what is missing)."""
        now = self._clock.time_ms()
        merged: dict[tuple[str, str], int] = {}
        for server, key_id, minimum in wanted:
            minimum = now if minimum is None else minimum
            merged[(server, key_id)] = max(merged.get((server, key_id), minimum), minimum)
        ds = [
            defer.ensureDeferred(self.get_verify_key_or_none(s, k, m))
            for (s, k), m in merged.items()
            if self.get_verify_key_cached(s, k, m) is None
        ]
        if ds:
            await defer.gatherResults(ds, consumeErrors=True)

    async def ensure_event_keys(self, pdus: Iterable[Mapping[str, Any]]) -> None:
        """Prefetch the keys needed to check the signatures of ``pdus``."""
        from ..events.checks import required_signers

        wanted = []
        for pdu in pdus:
            ts = pdu.get("origin_server_ts")
            ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else None
            sigs = pdu.get("signatures")
            if not isinstance(sigs, Mapping):
                continue
            for server, _why in required_signers(pdu):
                by_key = sigs.get(server)
                if isinstance(by_key, Mapping):
                    wanted += [
                        (server, k, ts)
                        for k in by_key
                        if isinstance(k, str) and k.startswith("ed25519:")
                    ]
        await self.ensure_keys(wanted)

    # --- responses (also serve the notary) -----------------------------------------------
    def add_server_keys(self, keys: ServerKeys, source: str = "manual") -> None:
        """Accept an already validated response into the cache."""
        entries = self._keys.setdefault(keys.server_name, {})
        for key_id in keys.key_ids():
            until = keys.key_valid_until(key_id)
            assert until is not None
            prev = entries.get(key_id)
            if prev is None or until > prev.valid_until or prev.key != keys.key(key_id):
                if prev is not None and prev.key != keys.key(key_id):
                    log.warning(
                        "event=key_changed server=%s key_id=%s source=%s",
                        keys.server_name,
                        key_id,
                        source,
                    )
                entries[key_id] = _Entry(keys.key(key_id), until, source)  # type: ignore[arg-type]
        responses = [
            r for r in self._responses.get(keys.server_name, []) if r.key_ids() != keys.key_ids()
        ]
        responses.append(keys)
        responses.sort(key=lambda r: r.received_at_ms)
        self._responses[keys.server_name] = responses[-self.MAX_RESPONSES_PER_SERVER :]

    def stored_responses(self, server_name: str) -> list[ServerKeys]:
        return list(self._responses.get(server_name, []))

    async def refresh_direct(
        self, server_name: str, minimum_valid_until_ts: int
    ) -> ServerKeys | None:
        """Fetch ``server_name``'s keys from itself (notary use); None without a direct
        fetcher.  Errors propagate."""
        for fetcher in self.fetchers:
            if fetcher.is_direct:
                results = await fetcher.fetch(server_name, (), minimum_valid_until_ts)
                for keys in results:
                    await self._accept(keys, fetcher.name)
                return results[-1] if results else None
        return None

    # --- fetching ------------------------------------------------------------------------
    async def _accept(self, keys: ServerKeys, source: str) -> None:
        self.add_server_keys(keys, source)
        if self._store is not None:
            try:
                await self._store.save_server_keys(keys.server_name, keys.raw, keys.received_at_ms)
            except Exception:  # a cache write must not fail the lookup
                log.exception("event=key_store_save_failed server=%s", keys.server_name)

    def _satisfied(self, server: str, key_ids: Collection[str], need: int) -> bool:
        return all(self.get_verify_key_cached(server, k, need) is not None for k in key_ids)

    async def _fetch(self, server: str, key_ids: Collection[str], need: int) -> None:
        # Concurrent lookups for the same server share the fetch already running; each
        # re-checks the cache afterwards.
        await self._inflight.run(server, lambda: self._run_sources(server, key_ids, need))

    async def _run_sources(self, server: str, key_ids: Collection[str], need: int) -> None:
        if self._store is not None and server not in self._store_loaded:
            self._store_loaded.add(server)
            try:
                saved = await self._store.load_server_keys(server)
            except Exception:
                log.exception("event=key_store_load_failed server=%s", server)
                saved = []
            for raw, received_at in saved:
                try:
                    self.add_server_keys(parse_server_keys(raw, server, received_at), "store")
                except InvalidKeyResponse as exc:
                    log.warning(
                        "event=stored_keys_invalid server=%s reason=%s", server, exc.message
                    )
            if self._satisfied(server, key_ids, need):
                return
        for fetcher in self.fetchers:
            try:
                results = await fetcher.fetch(server, key_ids, need)
            except Exception as exc:  # noqa: BLE001 - try the next source
                log.info(
                    "event=key_fetch_failed server=%s fetcher=%s error=%s: %s",
                    server,
                    fetcher.name,
                    type(exc).__name__,
                    exc,
                )
                continue
            for keys in results:
                await self._accept(keys, fetcher.name)
            if self._satisfied(server, key_ids, need):
                return
