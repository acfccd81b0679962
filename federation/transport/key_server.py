"""Serving keys: ``GET /_matrix/key/v2/server`` and the notary ``/_matrix/key/v2/query``
(spec: server-server API "Retrieving server keys" > "Publishing Keys" and "Querying Keys
Through Another Server"; ``keys_server.yaml``, ``keys_query.yaml``, ``definitions/keys.yaml``).

Publishing: ``{server_name, verify_keys, old_verify_keys, valid_until_ts, signatures}``
signed by every current signing key.  ``verify_keys`` sign requests and events;
``old_verify_keys`` (``{key, expired_ts}``) only let others check old events.
``valid_until_ts`` is now + the configured lifetime ("Originating servers should avoid
returning responses that expire in less than an hour"): the signed response is reused until
half its lifetime is left, then rebuilt.

Notary: for each queried server, the origin's own signed response (as received, with its
self-signature) plus our signature.  ``minimum_valid_until_ts`` defaults to now; a cached
response expiring before it is refreshed directly from the origin, and if the origin cannot
be reached the last response is returned anyway ("notary servers should continue to return
the last response they received").  Servers with nothing to return are left out.

Rotation (``parta node keys rotate``): ``rotate_signing_keys`` makes a new key and moves the
current ones to the old keys with ``expired_ts`` = now.  Old keys are stored as the
``old_verify_keys`` JSON object (``old_keys_to_json``/``old_keys_from_json``).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence

from ..clock import Clock
from ..errors import BadJSON, InvalidParam
from ..keys import KeyFormatError, SigningKey, VerifyKey
from ..signing import sign_json
from .key_responses import ServerKeys
from .server_names import InvalidServerName, parse_server_name

log = logging.getLogger(__name__)

DEFAULT_KEY_LIFETIME_MS = 24 * 3600 * 1000
MIN_KEY_LIFETIME_MS = 3600 * 1000


@dataclass(frozen=True)
class OldKey:
    """A key we no longer sign with, and when we stopped using it."""

    verify_key: VerifyKey
    expired_ts: int


def build_server_keys(
    server_name: str,
    signing_keys: Sequence[SigningKey],
    old_keys: Iterable[OldKey],
    valid_until_ts: int,
) -> dict[str, Any]:
    """The signed ``/_matrix/key/v2/server`` body."""
    if not signing_keys:
        raise ValueError("a server needs at least one signing key")
    current = {k.key_id for k in signing_keys}
    body: dict[str, Any] = {
        "server_name": server_name,
        "verify_keys": {k.key_id: {"key": k.verify_key.encode()} for k in signing_keys},
        "old_verify_keys": {
            o.verify_key.key_id: {"key": o.verify_key.encode(), "expired_ts": o.expired_ts}
            for o in old_keys
            if o.verify_key.key_id not in current
        },
        "valid_until_ts": valid_until_ts,
    }
    for key in signing_keys:
        sign_json(body, server_name, key)
    return body


class KeyServer:
    """Our published keys; the single source for the key endpoint and the key ring."""

    def __init__(
        self,
        server_name: str,
        signing_keys: Sequence[SigningKey],
        clock: Clock,
        old_keys: Iterable[OldKey] = (),
        *,
        key_lifetime_ms: int = DEFAULT_KEY_LIFETIME_MS,
    ) -> None:
        if key_lifetime_ms < MIN_KEY_LIFETIME_MS:
            raise ValueError("key_lifetime_ms must be at least one hour")
        self.server_name = server_name
        self._clock = clock
        self._lifetime = key_lifetime_ms
        self._cached: dict[str, Any] | None = None
        self._refresh_at = 0
        self.set_keys(signing_keys, old_keys)

    def set_keys(self, signing_keys: Sequence[SigningKey], old_keys: Iterable[OldKey] = ()) -> None:
        """Replace the keys (after a rotation); the next response is rebuilt."""
        if not signing_keys:
            raise ValueError("a server needs at least one signing key")
        self.signing_keys = list(signing_keys)
        self.old_keys = list(old_keys)
        self._cached = None

    @property
    def signing_key(self) -> SigningKey:
        """The key used to sign outgoing requests and events (the first one)."""
        return self.signing_keys[0]

    def verify_keys(self) -> dict[str, VerifyKey]:
        return {k.key_id: k.verify_key for k in self.signing_keys}

    def server_keys_response(self) -> dict[str, Any]:
        """The signed body for ``GET /_matrix/key/v2/server`` (do not mutate it)."""
        now = self._clock.time_ms()
        if self._cached is None or now >= self._refresh_at:
            self._cached = build_server_keys(
                self.server_name, self.signing_keys, self.old_keys, now + self._lifetime
            )
            self._refresh_at = now + self._lifetime // 2
        return self._cached


# --- notary query parsing ------------------------------------------------------------------


@dataclass(frozen=True)
class ServerCriteria:
    """What a notary query asks about one server: key IDs (empty: all) and the latest
    ``minimum_valid_until_ts`` given (None: "the notary server MUST use the current time")."""

    key_ids: frozenset[str] = frozenset()
    minimum_valid_until_ts: int | None = None


Criteria = dict[str, ServerCriteria]


def _check_server(name: Any) -> str:
    try:
        parse_server_name(name)
    except InvalidServerName as exc:
        raise InvalidParam(exc.message) from None
    checked: str = name  # parse_server_name accepted it, so it is a string
    return checked


def parse_key_query_body(body: Any) -> Criteria:
    """Validate a ``POST /_matrix/key/v2/query`` body into criteria (``BadJSON`` if wrong)."""
    if not isinstance(body, Mapping):
        raise BadJSON("Request body must be a JSON object")
    server_keys = body.get("server_keys")
    if not isinstance(server_keys, Mapping):
        raise BadJSON("'server_keys' must be an object of server names")
    criteria: Criteria = {}
    for server, keys in server_keys.items():
        _check_server(server)
        if not isinstance(keys, Mapping):
            raise BadJSON(f"server_keys.{server} must be an object of key IDs")
        minimum: int | None = None
        for key_id, crit in keys.items():
            if not isinstance(crit, Mapping):
                raise BadJSON(f"server_keys.{server}.{key_id} must be an object")
            ts = crit.get("minimum_valid_until_ts")
            if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)):
                raise BadJSON(
                    f"server_keys.{server}.{key_id}.minimum_valid_until_ts must be an integer"
                )
            if ts is not None:
                minimum = ts if minimum is None else max(minimum, ts)
        criteria[server] = ServerCriteria(frozenset(keys), minimum)
    return criteria


def parse_key_query_get(server_name: str, minimum_valid_until_ts: str | None) -> Criteria:
    """Criteria for ``GET /_matrix/key/v2/query/{serverName}?minimum_valid_until_ts=``."""
    _check_server(server_name)
    ts: int | None = None
    if minimum_valid_until_ts is not None:
        try:
            ts = int(minimum_valid_until_ts)
        except ValueError:
            raise InvalidParam("minimum_valid_until_ts must be an integer") from None
    return {server_name: ServerCriteria(frozenset(), ts)}


def notary_sign(
    origin_response: Mapping[str, Any], notary_name: str, notary_keys: Sequence[SigningKey]
) -> dict[str, Any]:
    """The origin's signed response with only its own and our signatures."""
    out = copy.deepcopy(dict(origin_response))
    origin = out.get("server_name")
    found = out.get("signatures")
    sigs: dict[str, Any] = found if isinstance(found, dict) else {}
    out["signatures"] = {origin: sigs[origin]} if origin in sigs else {}
    for key in notary_keys:
        sign_json(out, notary_name, key)
    return out


# --- the notary ----------------------------------------------------------------------------


class NotaryKeySource(Protocol):
    """What the notary needs from the key ring (``KeyRing`` implements it)."""

    def stored_responses(self, server_name: str) -> list[ServerKeys]: ...

    async def refresh_direct(
        self, server_name: str, minimum_valid_until_ts: int
    ) -> ServerKeys | None: ...


class NotaryService:
    """Answers ``/_matrix/key/v2/query`` from the key ring, signing with our keys."""

    def __init__(self, key_server: KeyServer, source: NotaryKeySource, clock: Clock) -> None:
        self._keys = key_server
        self._source = source
        self._clock = clock

    async def query(self, criteria: Criteria) -> dict[str, Any]:
        """``{"server_keys": [...]}`` for validated ``criteria``."""
        now = self._clock.time_ms()
        out: list[dict[str, Any]] = []
        for server, crit in criteria.items():
            minimum = now if crit.minimum_valid_until_ts is None else crit.minimum_valid_until_ts
            for response in await self._responses_for(server, set(crit.key_ids), minimum):
                out.append(notary_sign(response, self._keys.server_name, self._keys.signing_keys))
        return {"server_keys": out}

    async def handle_post(self, body: Any) -> tuple[int, dict[str, Any]]:
        return 200, await self.query(parse_key_query_body(body))

    async def handle_get(
        self, server_name: str, minimum_valid_until_ts: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        return 200, await self.query(parse_key_query_get(server_name, minimum_valid_until_ts))

    async def _responses_for(
        self, server: str, key_ids: set[str], minimum: int
    ) -> list[Mapping[str, Any]]:
        if server == self._keys.server_name:
            return [self._keys.server_keys_response()]
        stored = self._source.stored_responses(server)
        latest = max(stored, key=lambda r: r.received_at_ms, default=None)
        known = set().union(*(r.key_ids() for r in stored)) if stored else set()
        if latest is None or latest.valid_until_ts < minimum or not key_ids <= known:
            try:
                fresh = await self._source.refresh_direct(server, minimum)
            except Exception as exc:  # noqa: BLE001 - serve what we have
                log.info("event=notary_refresh_failed server=%s error=%s", server, exc)
                fresh = None
            if fresh is not None:
                stored = self._source.stored_responses(server)
                latest = fresh
        if latest is None:
            return []
        chosen = [latest]
        # Older responses that hold requested keys the latest does not list.
        missing = key_ids - latest.key_ids()
        for response in sorted(stored, key=lambda r: -r.received_at_ms):
            if missing & response.key_ids() and response is not latest:
                chosen.append(response)
                missing -= response.key_ids()
        return [r.raw for r in chosen]


# --- rotation ------------------------------------------------------------------------------


def rotate_signing_keys(
    current: Sequence[SigningKey],
    old: Iterable[OldKey],
    now_ms: int,
    new_version: str | None = None,
) -> tuple[list[SigningKey], list[OldKey]]:
    """A new signing key; the current ones become old keys expired at ``now_ms``."""
    new = SigningKey.generate(new_version)
    if any(k.key_id == new.key_id for k in current) or any(
        o.verify_key.key_id == new.key_id for o in old
    ):
        raise KeyFormatError(f"key version {new.version!r} was already used")
    old_list = [o for o in old if o.verify_key.key_id not in {k.key_id for k in current}]
    old_list += [OldKey(k.verify_key, now_ms) for k in current]
    return [new], old_list


def old_keys_to_json(old: Iterable[OldKey]) -> dict[str, Any]:
    return {
        o.verify_key.key_id: {"key": o.verify_key.encode(), "expired_ts": o.expired_ts} for o in old
    }


def old_keys_from_json(obj: Any) -> list[OldKey]:
    """Read the ``old_verify_keys``-shaped object written by ``old_keys_to_json``."""
    if not isinstance(obj, Mapping):
        raise KeyFormatError("old keys must be a JSON object of key IDs")
    out = []
    for key_id, entry in obj.items():
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("key"), str)
            or not isinstance(entry.get("expired_ts"), int)
            or isinstance(entry.get("expired_ts"), bool)
        ):
            raise KeyFormatError(f"old key {key_id!r} needs 'key' and integer 'expired_ts'")
        out.append(OldKey(VerifyKey.decode(key_id, entry["key"]), entry["expired_ts"]))
    return out
