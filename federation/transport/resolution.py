"""Resolving server names to where to connect (spec: server-server API "Server discovery" >
"Resolving server names"; ``wellknown.yaml``; "TLS" on SNI).

A ``Resolution`` says which ``host``/``port`` to connect to, the ``Host`` header, and the
name the TLS certificate must be valid for (``tls_name``: SNI is sent for a DNS name, never
for an IP address).  The steps, in the spec's order, as far as they apply without DNS SRV
(Parta does not look up SRV records; a delegation that would need one falls through to the
spec's final step for that branch, port 8448):

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
   3.3/3.4 SRV lookups: not done;
   3.5 hostname without port: port 8448, ``Host`` = the delegated hostname, certificate for
       the delegated hostname.
4./5. SRV lookups: not done.
6. The ``.well-known`` request failed (non-200, bad JSON, missing/invalid ``m.server``,
   network error): the hostname, port 8448, ``Host`` = the hostname.

The resolver only says where to go; the client (``checked_connect._CheckedTCPEndpoint``) checks
every address a ``Resolution`` stands for -- an IP literal, an override or delegation
target, each DNS answer -- against ``ip_ranges.AddressFilter`` right before connecting,
and connects to the checked address, so no step here can lead outbound federation to a
refused range (``federation.ip_range_blacklist``).  The ``.well-known`` fetch goes through
the same check.

``.well-known`` responses are cached per hostname: successes for the ``Cache-Control``
``max-age`` (default 24 h, at most 48 h, at least ``min_ttl_ms`` so ``no-cache`` does not turn
into a fetch per request), failures for ``error_ttl_ms`` (1 h, the spec's recommended
maximum).  Concurrent resolutions of one hostname share a single fetch.  The HTTP GET is an
injected ``HttpsGetter`` (``client.WellKnownGetter`` in the node, a fake in tests).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence
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
class Resolution:
    server_name: str  # the name being resolved (what requests are signed for)
    host: str  # DNS name or IP address (no brackets) to connect to
    port: int
    host_header: str
    tls_name: str  # the certificate must be valid for this (DNS name or IP)
    step: str  # "override", "ip-literal", "explicit-port", "well-known", "default"


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
    ) -> None:
        self._clock = clock
        self._getter = getter
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
            return Resolution(
                server_name,
                delegated.host,
                DEFAULT_FEDERATION_PORT,  # 3.5
                delegated.host,
                delegated.host,
                "well-known",
            )
        # 6. No (valid) delegation: the hostname on port 8448.
        return Resolution(
            server_name, name.host, DEFAULT_FEDERATION_PORT, name.host, name.host, "default"
        )

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
