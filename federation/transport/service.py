"""One object bundling the transport for the node (composition helper, no new protocol).

``build_transport(reactor, clock, server_name, signing_keys, config=...)`` wires:

* ``key_server`` (``KeyServer``) - our published keys: ``GET /_matrix/key/v2/server`` ->
  ``key_server.server_keys_response()``;
* ``tls_policy`` (``ClientTLSPolicy``), ``resolver`` (``ServerResolver`` with the override map
  and a ``WellKnownGetter``), ``client`` (``FederationHttpClient``);
* ``keyring`` (``KeyRing``): our own keys from ``key_server``; pinned keys if given; else the
  optional store, ``DirectKeyFetcher`` then one ``NotaryKeyFetcher`` per trusted notary;
* ``notary`` (``NotaryService``) - ``POST /_matrix/key/v2/query`` ->
  ``await notary.handle_post(body)``; ``GET /_matrix/key/v2/query/{serverName}`` ->
  ``await notary.handle_get(server_name, req.query("minimum_valid_until_ts"))``.

``await transport.authenticate(method, uri, body_json, authorization)`` authenticates an
inbound federation request (X-Matrix, fetching the origin's key if needed) and returns the
origin, or raises ``Unauthorized`` (401 ``M_UNAUTHORIZED``).

``TransportConfig`` is a plain dataclass meant to be nested in the node's YAML config
(``federation:`` section); ``trusted_notaries`` entries are
``{"server_name": ..., "verify_keys": {"ed25519:abc": "<unpadded base64>"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..clock import Clock
from ..errors import InvalidParam
from ..keys import KeyFormatError, SigningKey, VerifyKey
from .client import FederationHttpClient, WellKnownGetter
from .key_server import DEFAULT_KEY_LIFETIME_MS, KeyServer, NotaryService, OldKey
from .keyring import (
    DirectKeyFetcher,
    KeyFetcher,
    KeyRing,
    KeyStore,
    NotaryKeyFetcher,
    PinnedKeySource,
)
from .resolution import ServerResolver
from .server_names import InvalidServerName, parse_server_name
from .tls import ClientTLSPolicy
from .xmatrix import verify_request_async


@dataclass
class TransportConfig:
    ca_file: str | None = None  # PEM bundle replacing the system store
    insecure_skip_tls_verify: bool = False  # loopback tests only; logged loudly
    server_overrides: dict[str, str] = field(default_factory=dict)  # server name -> "host[:port]"
    trusted_notaries: list[Any] = field(default_factory=list)  # raw; parse_notaries checks
    key_lifetime_ms: int = DEFAULT_KEY_LIFETIME_MS
    request_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    key_fetch_timeout_s: float = 10.0
    max_persistent_per_host: int = 5
    well_known_lookup: bool = True  # false: no .well-known (port 8448 directly)


def parse_notaries(entries: Iterable[Any]) -> list[tuple[str, list[VerifyKey]]]:
    """Validate ``trusted_notaries`` entries; ``InvalidParam`` names the bad entry."""
    out = []
    for i, entry in enumerate(entries):
        where = f"trusted_notaries[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidParam(f"{where}: expected a mapping with server_name and verify_keys")
        name: Any = entry.get("server_name")  # any JSON value until parse_server_name
        try:
            parse_server_name(name)
        except InvalidServerName as exc:
            raise InvalidParam(f"{where}.server_name: {exc.message}") from None
        keys = entry.get("verify_keys")
        if not isinstance(keys, Mapping) or not keys:
            raise InvalidParam(f"{where}.verify_keys: expected key ID -> base64 key")
        try:
            out.append((name, [VerifyKey.decode(k, v) for k, v in keys.items()]))
        except KeyFormatError as exc:
            raise InvalidParam(f"{where}.verify_keys: {exc.message}") from None
    return out


@dataclass
class FederationTransport:
    server_name: str
    key_server: KeyServer
    tls_policy: ClientTLSPolicy
    resolver: ServerResolver
    client: FederationHttpClient
    keyring: KeyRing
    notary: NotaryService
    well_known_getter: WellKnownGetter | None = None

    async def authenticate(
        self,
        method: str,
        uri: str | bytes,
        body_json: Any,
        authorization: str | bytes | Sequence[str | bytes] | None,
    ) -> str:
        return await verify_request_async(
            method, uri, body_json, authorization, self.server_name, self.keyring.get_verify_key
        )

    def rotate(self, signing_keys: Sequence[SigningKey], old_keys: Iterable[OldKey]) -> None:
        """Use new keys at run time (the key endpoint and outbound signatures follow)."""
        self.key_server.set_keys(signing_keys, old_keys)

    async def close(self) -> None:
        await self.client.close()
        if self.well_known_getter is not None:
            await self.well_known_getter.pool.closeCachedConnections()


def build_transport(
    reactor: Any,
    clock: Clock,
    server_name: str,
    signing_keys: Sequence[SigningKey],
    *,
    old_keys: Iterable[OldKey] = (),
    config: TransportConfig | None = None,
    pinned: PinnedKeySource | None = None,
    store: KeyStore | None = None,
    extra_fetchers: Sequence[KeyFetcher] = (),
) -> FederationTransport:
    config = config or TransportConfig()
    parse_server_name(server_name)
    notaries = parse_notaries(config.trusted_notaries)
    key_server = KeyServer(
        server_name, signing_keys, clock, old_keys, key_lifetime_ms=config.key_lifetime_ms
    )
    policy = ClientTLSPolicy(
        config.ca_file, insecure_skip_tls_verify=config.insecure_skip_tls_verify
    )
    getter = (
        WellKnownGetter(reactor, policy, connect_timeout=config.connect_timeout_s)
        if config.well_known_lookup
        else None
    )
    resolver = ServerResolver(clock, getter, config.server_overrides)
    client = FederationHttpClient(
        reactor,
        server_name,
        lambda: key_server.signing_key,
        resolver,
        policy,
        max_persistent_per_host=config.max_persistent_per_host,
        connect_timeout=config.connect_timeout_s,
        default_timeout=config.request_timeout_s,
    )
    fetchers: list[KeyFetcher] = [
        DirectKeyFetcher(client, clock, timeout=config.key_fetch_timeout_s)
    ]
    fetchers += [
        NotaryKeyFetcher(client, clock, name, keys, timeout=config.key_fetch_timeout_s)
        for name, keys in notaries
    ]
    fetchers += list(extra_fetchers)
    keyring = KeyRing(clock, fetchers, pinned, store, local=key_server)
    notary = NotaryService(key_server, keyring, clock)
    return FederationTransport(
        server_name, key_server, policy, resolver, client, keyring, notary, getter
    )
