"""Resolving server names to where to connect (spec: server-server API "Server discovery" >
"Resolving server names"; ``wellknown.yaml``; "TLS" on SNI).

A ``Resolution`` says which ``host``/``port`` to connect to, the ``Host`` header, and the
name the TLS certificate must be valid for (``tls_name``: SNI is sent for a DNS name, never
for an IP address).  The steps, in the spec's order:

0. (Parta) A static override from config, ``server name -> "host[:port]"``: connect there,
   ``Host`` = the server name, certificate for the server name's hostname (as with SRV, the
   target must prove it is that server).
1. IP literal: that address, the given port or 8448; ``Host`` = the server name; the
   certificate must be valid for the IP address.
2. Hostname with an explicit port: that host and port; ``Host`` = the server name;
   certificate for the hostname.
3. Otherwise ``GET https://<hostname>/.well-known/matrix/server`` (30x redirects followed,
   at most ``MAX_REDIRECTS``, no loops, HTTPS only).  If the response is valid, ``m.server``
   is parsed as ``<delegated_hostname>[:<delegated_port>]``:
   3.1 IP literal: that address, the delegated port or 8448, ``Host`` = the IP (with the
       port if one was given), certificate for the IP;
   3.2 hostname with port: ``Host`` = ``<delegated_hostname>:<delegated_port>``, certificate
       for the delegated hostname;
   3.3 hostname without port: the SRV record ``_matrix-fed._tcp.<delegated_hostname>``,
   3.4 (deprecated) else ``_matrix._tcp.<delegated_hostname>``: its target and port,
       ``Host`` and certificate = the delegated hostname (never the SRV target: DNS is not
       secure, the target proves it may serve the name with TLS);
   3.5 no SRV record: port 8448, ``Host`` = the delegated hostname, certificate for
       the delegated hostname.
4. The ``.well-known`` request failed (non-200, bad JSON, missing/invalid ``m.server``,
   network error): the SRV record ``_matrix-fed._tcp.<hostname>``,
5. (deprecated) else ``_matrix._tcp.<hostname>``: its target and port, ``Host`` and
   certificate = the hostname;
6. no SRV record either: the hostname, port 8448, ``Host`` = the hostname.

SRV lookups (``SrvLookup``, ``dns_srv.TwistedSrvLookup`` in the node: the system's DNS
servers, or ``federation.dns_server``) are cached per record name: answers for their DNS
TTL (within ``min_ttl_ms``..``max_ttl_ms``), "no such record" for ``error_ttl_ms``, a
failed lookup (timeout, server failure) for ``SRV_FAILURE_TTL_MS``; concurrent lookups of
one name share a query.  Several records are ordered as RFC 2782 says (lowest priority
first, weighted random order within a priority, a target of ``.`` dropped): the first is
the ``Resolution``'s ``host``/``port``, the others its ``fallbacks``, tried in turn when a
connection fails.  Without an ``SrvLookup`` the SRV steps are skipped.

The resolver only says where to go; the client (``checked_connect._CheckedTCPEndpoint``) checks
every address a ``Resolution`` stands for -- an IP literal, an override or delegation
target, each DNS answer -- against ``ip_ranges.AddressFilter`` right before connecting,
and connects to the checked address, so no step here can lead outbound federation to a
refused range (``federation.ip_range_blacklist``).  The ``.well-known`` fetch goes through
the same check.

The SRV target is an ordinary hostname resolved (A/AAAA) and checked like any other.

``.well-known`` responses are cached per hostname: successes for the ``Cache-Control``
``max-age`` (default 24 h, at most 48 h, at least ``min_ttl_ms`` so ``no-cache`` does not turn
into a fetch per request), failures for ``error_ttl_ms`` (1 h, the spec's recommended
maximum).  Concurrent resolutions of one hostname share a single fetch.  The HTTP GET is an
injected ``HttpsGetter`` (``client.WellKnownGetter`` in the node, a fake in tests).
"""

from __future__ import annotations

import logging
import random as _random
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, Sequence
from urllib.parse import urljoin, urlsplit

from ..canonical_json import parse_json
from ..clock import Clock
from ..errors import MatrixError
from .coalesce import Coalescer
from .server_names import DEFAULT_FEDERATION_PORT, InvalidServerName, ServerName, parse_server_name

log = logging.getLogger(__name__)

HOUR_MS = 3600 * 1000
DEFAULT_TTL_MS = 24 * HOUR_MS
MAX_TTL_MS = 48 * HOUR_MS
ERROR_TTL_MS = HOUR_MS
MIN_TTL_MS = 60 * 1000
MAX_REDIRECTS = 5
MAX_WELL_KNOWN_BYTES = 50 * 1024
WELL_KNOWN_TIMEOUT_S = 10.0
SRV_FAILURE_TTL_MS = 5 * 60 * 1000
MAX_SRV_RECORDS = 16  # records of one name kept (the rest: ignored)
SRV_SERVICES = ("_matrix-fed._tcp", "_matrix._tcp")  # in the spec's order (3.3/4, 3.4/5)

_MAX_AGE = re.compile(r"max-age\s*=\s*\"?([0-9]+)\"?\Z", re.IGNORECASE)


@dataclass(frozen=True)
class HttpsResponse:
    status: int
    headers: Mapping[str, Sequence[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None


class HttpsGetter(Protocol):
    """A single HTTPS GET without following redirects (certificate verified)."""

    async def get(self, url: str, *, timeout: float, max_bytes: int) -> HttpsResponse: ...


@dataclass(frozen=True)
class SrvRecord:
    """One SRV answer (RFC 2782); ``target`` without its trailing dot."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class SrvAnswer:
    """The records of one SRV name (empty: the name has none) and how long they hold."""

    records: tuple[SrvRecord, ...]
    ttl_s: int | None = None  # the DNS TTL of the answer, when there were records


class SrvLookupFailed(Exception):
    """The DNS lookup itself failed (timeout, server failure): not "no such record"."""


class SrvLookup(Protocol):
    """A DNS SRV query for a full record name (``_matrix-fed._tcp.example.org``)."""

    async def lookup(self, name: str) -> SrvAnswer: ...


@dataclass(frozen=True)
class Resolution:
    server_name: str  # the name being resolved (what requests are signed for)
    host: str  # DNS name or IP address (no brackets) to connect to
    port: int
    host_header: str
    tls_name: str  # the certificate must be valid for this (DNS name or IP)
    # "override", "ip-literal", "explicit-port", "well-known", "well-known-srv", "srv",
    # "default"
    step: str
    # More (host, port) targets from the SRV records, in order, tried when the connection
    # to host:port fails.
    fallbacks: tuple[tuple[str, int], ...] = ()


def parse_override(value: str) -> ServerName:
    """A config override target ``host[:port]`` (IPv6 in brackets)."""
    try:
        return parse_server_name(value)
    except InvalidServerName as exc:
        raise InvalidServerName(f"federation override target: {exc.message}") from None


def cache_ttl_ms(
    cache_control: str | None,
    *,
    default_ms: int = DEFAULT_TTL_MS,
    max_ms: int = MAX_TTL_MS,
    min_ms: int = MIN_TTL_MS,
) -> int:
    """How long to cache a successful ``.well-known`` response."""
    ttl = default_ms
    if cache_control:
        directives = [d.strip() for d in cache_control.split(",")]
        if any(d.lower() in ("no-store", "no-cache") for d in directives):
            ttl = 0
        for d in directives:
            m = _MAX_AGE.match(d)
            if m:
                ttl = min(int(m.group(1)), max_ms // 1000 + 1) * 1000
    return max(min(ttl, max_ms), min_ms)


def _usable_target(record: SrvRecord) -> bool:
    """A port that can be connected to and a target that is a hostname (or ``.``)."""
    if not 1 <= record.port <= 65535:
        return False
    if record.target in ("", "."):
        return True
    try:
        target = parse_server_name(record.target)
    except InvalidServerName:
        return False
    return target.port is None


def order_srv(records: Sequence[SrvRecord], rand: Callable[[], float]) -> list[SrvRecord]:
    """RFC 2782's order: by priority; within one priority a weighted random order (a
    record of weight 0 has a small chance to go first); targets ``.`` ("decidedly not
    available") are dropped."""
    usable = [r for r in records if r.target not in ("", ".")]
    out: list[SrvRecord] = []
    for priority in sorted({r.priority for r in usable}):
        group = sorted((r for r in usable if r.priority == priority), key=lambda r: r.weight)
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                out.extend(group)
                break
            point = rand() * total
            running = 0
            for i, r in enumerate(group):
                running += r.weight
                if point < running or i == len(group) - 1:
                    out.append(group.pop(i))
                    break
    return out


def parse_well_known(body: bytes) -> ServerName:
    """``m.server`` of a ``.well-known/matrix/server`` body; ``ValueError`` if invalid."""
    try:
        obj = parse_json(body)  # "assume that the body is JSON regardless of type"
    except MatrixError as exc:
        raise ValueError(f"not JSON ({exc.message})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    target = obj.get("m.server")
    if not isinstance(target, str):
        raise ValueError("no string 'm.server'")
    try:
        return parse_server_name(target)
    except InvalidServerName as exc:
        raise ValueError(f"invalid m.server: {exc.message}") from None


class ServerResolver:
    def __init__(
        self,
        clock: Clock,
        getter: HttpsGetter | None = None,
        overrides: Mapping[str, str] | None = None,
        *,
        default_ttl_ms: int = DEFAULT_TTL_MS,
        max_ttl_ms: int = MAX_TTL_MS,
        min_ttl_ms: int = MIN_TTL_MS,
        error_ttl_ms: int = ERROR_TTL_MS,
        timeout_s: float = WELL_KNOWN_TIMEOUT_S,
        srv: SrvLookup | None = None,
        srv_failure_ttl_ms: int = SRV_FAILURE_TTL_MS,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._clock = clock
        self._getter = getter
        self._srv = srv
        self._srv_failure_ttl = srv_failure_ttl_ms
        self._random = random
        self._srv_cache: dict[str, tuple[tuple[SrvRecord, ...], int]] = {}
        self._overrides = {
            name: parse_override(target) for name, target in (overrides or {}).items()
        }
        self._default_ttl = default_ttl_ms
        self._max_ttl = max_ttl_ms
        self._min_ttl = min_ttl_ms
        self._error_ttl = error_ttl_ms
        self._timeout = timeout_s
        self._well_known: dict[str, tuple[ServerName | None, int]] = {}
        self._coalescer = Coalescer()

    def set_override(self, server_name: str, target: str | None) -> None:
        """Add, replace or (``None``) remove an override at run time."""
        if target is None:
            self._overrides.pop(server_name, None)
        else:
            self._overrides[server_name] = parse_override(target)

    async def resolve(self, server_name: str) -> Resolution:
        """Where and how to connect to ``server_name`` (``InvalidServerName`` if invalid)."""
        name = parse_server_name(server_name)
        # 0. Static override from config.
        target = self._overrides.get(server_name)
        if target is not None:
            return Resolution(
                server_name, target.host, target.port_or_default, server_name, name.host, "override"
            )
        # 1. IP literal.
        if name.is_ip_literal:
            return Resolution(
                server_name, name.host, name.port_or_default, server_name, name.host, "ip-literal"
            )
        # 2. Hostname with explicit port.
        if name.port is not None:
            return Resolution(
                server_name, name.host, name.port, server_name, name.host, "explicit-port"
            )
        # 3. .well-known delegation.
        delegated = await self._well_known_for(name.host)
        if delegated is not None:
            if delegated.is_ip_literal:  # 3.1
                return Resolution(
                    server_name,
                    delegated.host,
                    delegated.port_or_default,
                    str(delegated),
                    delegated.host,
                    "well-known",
                )
            if delegated.port is not None:  # 3.2
                return Resolution(
                    server_name,
                    delegated.host,
                    delegated.port,
                    str(delegated),
                    delegated.host,
                    "well-known",
                )
            # 3.3/3.4: SRV records of the delegated hostname.
            via_srv = await self._srv_resolution(server_name, delegated.host, "well-known-srv")
            if via_srv is not None:
                return via_srv
            return Resolution(
                server_name,
                delegated.host,
                DEFAULT_FEDERATION_PORT,  # 3.5
                delegated.host,
                delegated.host,
                "well-known",
            )
        # 4./5. No (valid) delegation: SRV records of the hostname.
        via_srv = await self._srv_resolution(server_name, name.host, "srv")
        if via_srv is not None:
            return via_srv
        # 6. No delegation, no SRV record: the hostname on port 8448.
        return Resolution(
            server_name, name.host, DEFAULT_FEDERATION_PORT, name.host, name.host, "default"
        )

    # --- SRV ---------------------------------------------------------------------------
    async def _srv_resolution(
        self, server_name: str, hostname: str, step: str
    ) -> Resolution | None:
        """Where the first SRV name with usable records points; ``Host`` and certificate
        stay ``hostname``.  None: no SRV lookup configured, or no records."""
        if self._srv is None:
            return None
        for service in SRV_SERVICES:
            records = order_srv(await self._srv_records(f"{service}.{hostname}"), self._random)
            if records:
                first, rest = records[0], records[1:]
                return Resolution(
                    server_name,
                    first.target,
                    first.port,
                    hostname,
                    hostname,
                    step,
                    tuple((r.target, r.port) for r in rest),
                )
        return None

    async def _srv_records(self, name: str) -> tuple[SrvRecord, ...]:
        now = self._clock.time_ms()
        cached = self._srv_cache.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        return await self._coalescer.run(("srv", name), lambda: self._fetch_srv(name))

    async def _fetch_srv(self, name: str) -> tuple[SrvRecord, ...]:
        assert self._srv is not None
        try:
            answer = await self._srv.lookup(name)
        except Exception as exc:  # noqa: BLE001 - a failed lookup means "no SRV record"
            log.info("event=srv_failed name=%s error=%s: %s", name, type(exc).__name__, exc)
            self._srv_cache[name] = ((), self._clock.time_ms() + self._srv_failure_ttl)
            return ()
        records = tuple(r for r in answer.records if _usable_target(r))[:MAX_SRV_RECORDS]
        if records:
            ttl = max(min((answer.ttl_s or 0) * 1000, self._max_ttl), self._min_ttl)
            log.info(
                "event=srv name=%s records=%s ttl_s=%d",
                name,
                ",".join(f"{r.target}:{r.port}" for r in records),
                ttl // 1000,
            )
        else:
            ttl = self._error_ttl
        self._srv_cache[name] = (records, self._clock.time_ms() + ttl)
        return records

    # --- .well-known -------------------------------------------------------------------
    async def _well_known_for(self, hostname: str) -> ServerName | None:
        now = self._clock.time_ms()
        cached = self._well_known.get(hostname)
        if cached is not None and cached[1] > now:
            return cached[0]
        return await self._coalescer.run(hostname, lambda: self._fetch_well_known(hostname))

    async def _fetch_well_known(self, hostname: str) -> ServerName | None:
        result: ServerName | None = None
        ttl = self._error_ttl
        if self._getter is None:
            self._well_known[hostname] = (None, self._clock.time_ms() + self._error_ttl)
            return None
        try:
            response = await self._get_following_redirects(
                f"https://{hostname}/.well-known/matrix/server"
            )
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            result = parse_well_known(response.body)
            ttl = cache_ttl_ms(
                response.header("cache-control"),
                default_ms=self._default_ttl,
                max_ms=self._max_ttl,
                min_ms=self._min_ttl,
            )
            log.info(
                "event=well_known server=%s delegated=%s ttl_s=%d", hostname, result, ttl // 1000
            )
        except Exception as exc:  # noqa: BLE001 - any failure means "no delegation"
            log.info(
                "event=well_known_failed server=%s error=%s: %s", hostname, type(exc).__name__, exc
            )
            result, ttl = None, self._error_ttl
        self._well_known[hostname] = (result, self._clock.time_ms() + ttl)
        return result

    async def _get_following_redirects(self, url: str) -> HttpsResponse:
        assert self._getter is not None
        seen = {url}
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._getter.get(
                url, timeout=self._timeout, max_bytes=MAX_WELL_KNOWN_BYTES
            )
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.header("location")
            if not location:
                raise ValueError(f"HTTP {response.status} without Location")
            url = urljoin(url, location)
            if urlsplit(url).scheme != "https":
                raise ValueError(f"redirect to a non-HTTPS URL {url!r}")
            if url in seen:
                raise ValueError(f"redirect loop at {url!r}")
            seen.add(url)
        raise ValueError(f"more than {MAX_REDIRECTS} redirects")

    def forget(self, hostname: str) -> None:
        """Drop the cached ``.well-known`` result for ``hostname``."""
        self._well_known.pop(hostname, None)
