"""The city roster: the signed list of servers allowed in the closed federation.

Parta's own format (docs/architecture.md "The closed federation"), signed with the
Matrix JSON-signing algorithm (spec appendix "Signing JSON").  A roster version is::

    {"version": 3,                       # integer >= 1, +1 per published version
     "issued_ts": 1700000000000,         # ms since the epoch
     "valid_until_ts": 1700604800000,    # > issued_ts; after it the roster is *stale*
     "prev_sha256": "<b64>" | null,      # roster_hash() of version - 1; null for version 1
     "servers": {
        "school42.example": {"school_id": "42", "name": "Lyceum No. 42", "district": "North",
                             "class": "school",                  # | "city" | "external"
                             "verify_keys": {"ed25519:a_1": {"key": "<b64>"}},
                             "old_verify_keys": {"ed25519:a_0":  # optional
                                                 {"key": "<b64>", "expired_ts": 1699...}}}},
     "signatures": {"<signer name>": {"ed25519:roster_1": "<b64>"}}}

Signing identity.  The signer name is the gateway's server name (e.g. ``city.example``) and the
key ID is ``ed25519:roster_<n>``: a dedicated ed25519 key, never a server key, stored apart
from the server key so it can live offline.  The ``roster_`` prefix keeps its key ID distinct
from the gateway's server key IDs, which sign under the same name.  A roster carries exactly
one signature, by the roster key; anything else in ``signatures`` is refused (so the bytes a
version hashes to, and hence the chain, cannot be changed by adding signatures).

Hash chain.  ``roster_hash(doc)`` is the unpadded Base64 SHA-256 of the canonical JSON of the
whole signed document, signatures included.  Version ``n + 1`` must carry the hash of version
``n`` in ``prev_sha256``; a node that skipped versions catches up with ``accept_chain``.

``RosterState`` is what every node holds: the last good roster, only ever replaced by a newer
version that verifies and chains.  Rollbacks, forks, gaps, broken chains and expired
documents are refused with a ``RosterError`` whose ``reason`` names the case (for metrics),
and the last good roster keeps being enforced.  An empty state admits nobody (fail closed).

Pure: no I/O; time is passed in as ``now_ms``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, TypeGuard

from .b64 import decode_base64, encode_base64
from .canonical_json import CanonicalJSONError, encode_canonical_json
from .errors import BadJSON, MatrixError
from .identifiers import is_valid_server_name
from .keys import KeyFormatError, SigningKey, VerifyKey
from .signing import SignatureError, sign_json, signed_bytes, verify_json

ROSTER_KEY_VERSION_PREFIX = "roster_"
ROSTER_KEY_ID_PREFIX = "ed25519:" + ROSTER_KEY_VERSION_PREFIX
SERVER_CLASSES = ("school", "city", "external")
MAX_TEXT = 255  # school_id / name / district, in characters
_SHA256_B64_LEN = 43  # unpadded Base64 of 32 bytes


class RosterError(MatrixError):
    """A roster document that is refused.  ``reason`` is a short machine-readable tag:

    ``malformed`` (shape), ``signer`` (signed by another key or signer, extra signatures),
    ``signature`` (does not verify: modified or forged), ``rollback`` (older version),
    ``fork`` (same version, different content), ``gap`` (versions skipped), ``chain``
    (``prev_sha256`` does not match), ``expired`` (``valid_until_ts`` in the past),
    ``key`` (a roster key that cannot be used).
    """

    errcode = "M_FORBIDDEN"
    http_status = 403

    def __init__(self, message: str, *, reason: str = "malformed", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason


# --- keys --------------------------------------------------------------------------------


def generate_roster_key(n: int = 1) -> SigningKey:
    """A new random roster key with key ID ``ed25519:roster_<n>``."""
    return SigningKey.generate(f"{ROSTER_KEY_VERSION_PREFIX}{int(n)}")


def is_roster_key_id(key_id: object) -> bool:
    return (
        isinstance(key_id, str)
        and key_id.startswith(ROSTER_KEY_ID_PREFIX)
        and len(key_id) > len(ROSTER_KEY_ID_PREFIX)
    )


def roster_key_fingerprint(verify_key: VerifyKey) -> str:
    """Unpadded Base64 SHA-256 of the raw 32-byte public key (what enrolment tokens carry)."""
    return encode_base64(hashlib.sha256(verify_key.public_bytes).digest())


def _check_roster_key_id(key_id: str) -> None:
    if not is_roster_key_id(key_id):
        raise RosterError(
            f"Key {key_id} is not a roster key (key IDs must start with "
            f"{ROSTER_KEY_ID_PREFIX!r}); never use a server key for the roster",
            reason="key",
        )


# --- the parsed form ---------------------------------------------------------------------


@dataclass(frozen=True)
class RosterEntry:
    """One server of a verified roster; keys already decoded."""

    server_name: str
    school_id: str
    name: str
    district: str
    server_class: str
    verify_keys: Mapping[str, VerifyKey]
    # key ID -> (key, expired_ts): keys the server used before, for checking old events.
    old_verify_keys: Mapping[str, tuple[VerifyKey, int]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Roster:
    """A verified roster version.  ``doc`` is a private copy of the signed document."""

    version: int
    issued_ts: int
    valid_until_ts: int
    prev_sha256: str | None
    sha256: str
    servers: Mapping[str, RosterEntry]
    doc: Mapping[str, Any]

    def is_expired(self, now_ms: int) -> bool:
        return self.valid_until_ts < now_ms

    def by_school_id(self, school_id: str) -> RosterEntry | None:
        for e in self.servers.values():
            if e.school_id == school_id:
                return e
        return None


# --- hashing, building -------------------------------------------------------------------


def roster_hash(signed_roster: Mapping[str, Any]) -> str:
    """Unpadded Base64 SHA-256 of the canonical JSON of the signed roster (with signatures)."""
    try:
        data = encode_canonical_json(signed_roster)
    except CanonicalJSONError as exc:
        raise RosterError(f"Roster has no canonical JSON form: {exc.message}") from None
    return encode_base64(hashlib.sha256(data).digest())


def server_entry(
    *,
    school_id: str,
    name: str,
    district: str = "",
    server_class: str = "school",
    verify_keys: Mapping[str, Any] | Iterable[VerifyKey],
    old_verify_keys: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON of one ``servers`` entry.

    ``verify_keys`` may be ``VerifyKey`` objects (a list, or a dict by key ID) or already the
    JSON form ``{key_id: {"key": b64}}``.  ``old_verify_keys`` is JSON
    ``{key_id: {"key": b64, "expired_ts": ms}}``.
    """
    if isinstance(verify_keys, Mapping):
        items = list(verify_keys.items())
    else:
        items = [(k.key_id, k) for k in verify_keys]
    keys: dict[str, dict[str, Any]] = {}
    for key_id, k in items:
        keys[key_id] = {"key": k.encode()} if isinstance(k, VerifyKey) else dict(k)
    entry: dict[str, Any] = {
        "school_id": school_id,
        "name": name,
        "district": district,
        "class": server_class,
        "verify_keys": keys,
    }
    if old_verify_keys:
        entry["old_verify_keys"] = {k: dict(v) for k, v in old_verify_keys.items()}
    return entry


def build_roster(
    prev: Mapping[str, Any] | None,
    servers: Mapping[str, Mapping[str, Any]],
    issued_ts: int,
    validity_ms: int,
    signer_name: str,
    roster_key: SigningKey,
) -> dict[str, Any]:
    """Sign the version after ``prev`` (or version 1 if ``prev`` is None) listing ``servers``.

    ``servers`` maps server name -> entry JSON (see ``server_entry``); it is copied.  The
    result is checked with ``verify_roster`` before it is returned, so a bad entry raises a
    ``RosterError`` naming it instead of producing a roster nodes would refuse.
    """
    _check_roster_key_id(roster_key.key_id)
    if not isinstance(validity_ms, int) or isinstance(validity_ms, bool) or validity_ms <= 0:
        raise RosterError(f"validity_ms must be a positive integer, got {validity_ms!r}")
    if prev is None:
        version, prev_sha = 1, None
    else:
        pv = prev.get("version")
        if not isinstance(pv, int) or isinstance(pv, bool) or pv < 1:
            raise RosterError("Previous roster has no valid version")
        version, prev_sha = pv + 1, roster_hash(prev)
    try:
        servers_copy = json.loads(encode_canonical_json(dict(servers)))
    except CanonicalJSONError as exc:
        raise RosterError(f"servers: {exc.message}") from None
    doc = {
        "version": version,
        "issued_ts": issued_ts,
        "valid_until_ts": issued_ts + validity_ms,
        "prev_sha256": prev_sha,
        "servers": servers_copy,
    }
    sign_json(doc, signer_name, roster_key)
    verify_roster(doc, roster_key.verify_key, signer_name)
    return doc


# --- verification ------------------------------------------------------------------------


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(entry: Mapping[str, Any], key: str, where: str, *, allow_empty: bool) -> str:
    v = entry.get(key)
    if not isinstance(v, str) or (not allow_empty and not v) or len(v) > MAX_TEXT:
        need = "a string" if allow_empty else "a non-empty string"
        raise RosterError(f"{where}.{key} must be {need} of at most {MAX_TEXT} characters")
    return v


def _decode_keys(raw: object, where: str, *, old: bool) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise RosterError(f"{where} must be an object")
    out: dict[str, Any] = {}
    for key_id, obj in raw.items():
        if not isinstance(obj, Mapping) or not isinstance(obj.get("key"), str):
            raise RosterError(f"{where}.{key_id} must be an object with a string 'key'")
        try:
            vk = VerifyKey.decode(key_id, obj["key"])
        except KeyFormatError as exc:
            raise RosterError(f"{where}.{key_id}: {exc.message}") from None
        if old:
            ts = obj.get("expired_ts")
            if not _is_int(ts) or ts < 0:
                raise RosterError(f"{where}.{key_id}.expired_ts must be an integer >= 0")
            out[key_id] = (vk, ts)
        else:
            out[key_id] = vk
    return out


def _parse_entry(server_name: str, entry: object) -> RosterEntry:
    where = f"servers[{server_name!r}]"
    if not is_valid_server_name(server_name):
        raise RosterError(f"{where}: not a valid server name")
    if not isinstance(entry, Mapping):
        raise RosterError(f"{where} must be an object")
    cls = entry.get("class")
    if cls not in SERVER_CLASSES:
        raise RosterError(f"{where}.class must be one of {', '.join(SERVER_CLASSES)}, got {cls!r}")
    keys = _decode_keys(entry.get("verify_keys"), f"{where}.verify_keys", old=False)
    if not keys:
        raise RosterError(f"{where}.verify_keys must list at least one key")
    old = {}
    if entry.get("old_verify_keys") is not None:
        old = _decode_keys(entry["old_verify_keys"], f"{where}.old_verify_keys", old=True)
    return RosterEntry(
        server_name=server_name,
        school_id=_text(entry, "school_id", where, allow_empty=False),
        name=_text(entry, "name", where, allow_empty=False),
        district=_text(entry, "district", where, allow_empty=True),
        server_class=cls,
        verify_keys=keys,
        old_verify_keys=old,
    )


def verify_roster(doc: object, pinned_key: VerifyKey, signer_name: str) -> Roster:
    """Check ``doc``'s shape and its one signature by ``signer_name``/``pinned_key``.

    Does not look at time or at other versions (``RosterState`` does).  Raises
    ``RosterError``: ``malformed``, ``signer`` or ``signature``.
    """
    _check_roster_key_id(pinned_key.key_id)
    if not isinstance(doc, Mapping):
        raise RosterError("Roster must be a JSON object")
    try:
        canonical = encode_canonical_json(doc)
    except CanonicalJSONError as exc:
        raise RosterError(
            f"Roster is not valid canonical JSON: {exc.message} (at {exc.path})"
        ) from None
    copy = json.loads(canonical)  # private, immutable-by-convention copy

    # Signatures first: exactly one, by the pinned roster key.
    sigs = copy.get("signatures")
    if not isinstance(sigs, dict) or not sigs:
        raise RosterError("Roster is not signed", reason="signer")
    if set(sigs) != {signer_name}:
        others = ", ".join(sorted(set(sigs) - {signer_name})) or "nobody"
        raise RosterError(
            f"Roster must be signed by {signer_name} only (signed by {others})", reason="signer"
        )
    by_signer = sigs[signer_name]
    if not isinstance(by_signer, dict) or set(by_signer) != {pinned_key.key_id}:
        got = ", ".join(sorted(by_signer)) if isinstance(by_signer, dict) else "?"
        raise RosterError(
            f"Roster must carry exactly one signature, by the pinned key "
            f"{pinned_key.key_id} (got {got})",
            reason="signer",
        )
    if "unsigned" in copy:
        raise RosterError("Roster must not have an 'unsigned' part (it is not signed)")
    try:
        verify_json(copy, signer_name, pinned_key, message=signed_bytes(copy))
    except SignatureError as exc:
        raise RosterError(
            f"Roster signature does not verify with the pinned key "
            f"{pinned_key.key_id}: {exc.message}",
            reason="signature",
        ) from None

    # Shape (signed, so these are the city's mistakes, not an attacker's).
    version = copy.get("version")
    if not _is_int(version) or version < 1:
        raise RosterError(f"Roster version must be an integer >= 1, got {version!r}")
    issued, until = copy.get("issued_ts"), copy.get("valid_until_ts")
    if not _is_int(issued) or issued < 0:
        raise RosterError("Roster issued_ts must be an integer >= 0")
    if not _is_int(until) or until <= issued:
        raise RosterError("Roster valid_until_ts must be an integer after issued_ts")
    if "prev_sha256" not in copy:
        raise RosterError("Roster has no prev_sha256 (null for version 1)")
    prev = copy["prev_sha256"]
    if version == 1:
        if prev is not None:
            raise RosterError("Roster version 1 must have prev_sha256 null")
    else:
        if not isinstance(prev, str) or len(prev) != _SHA256_B64_LEN:
            raise RosterError(
                f"Roster version {version} must have prev_sha256: the "
                f"unpadded Base64 SHA-256 of version {version - 1}"
            )
        try:
            decode_base64(prev)
        except BadJSON:
            raise RosterError("Roster prev_sha256 is not unpadded Base64") from None
    servers_raw = copy.get("servers")
    if not isinstance(servers_raw, dict):
        raise RosterError("Roster servers must be an object")
    servers: dict[str, RosterEntry] = {}
    school_ids: dict[str, str] = {}
    for name, raw in servers_raw.items():
        entry = _parse_entry(name, raw)
        other = school_ids.setdefault(entry.school_id, name)
        if other != name:
            raise RosterError(f"school_id {entry.school_id!r} is used by both {other} and {name}")
        servers[name] = entry
    return Roster(
        version=version,
        issued_ts=issued,
        valid_until_ts=until,
        prev_sha256=prev,
        sha256=encode_base64(hashlib.sha256(canonical).digest()),
        servers=servers,
        doc=copy,
    )


# --- the node-side state -----------------------------------------------------------------

Listener = Callable[["Roster | None", Roster], None]


class RosterState:
    """The last good roster a node enforces, replaced only by verified, chained versions.

    ``is_member`` is the hot path of every inbound and outbound federation request: one dict
    lookup.  With no roster yet, nobody is a member (fail closed).
    """

    def __init__(self, pinned_key: VerifyKey, signer_name: str) -> None:
        _check_roster_key_id(pinned_key.key_id)
        self.pinned_key = pinned_key
        self.signer_name = signer_name
        self._current: Roster | None = None
        self._servers: Mapping[str, RosterEntry] = {}
        self._listeners: list[Listener] = []

    # --- reading -----------------------------------------------------------------------
    @property
    def current(self) -> Roster | None:
        return self._current

    @property
    def version(self) -> int:
        """The current version, 0 if there is none."""
        return self._current.version if self._current else 0

    @property
    def servers(self) -> Mapping[str, RosterEntry]:
        return self._servers

    def is_member(self, server_name: str) -> bool:
        return server_name in self._servers

    def entry(self, server_name: str) -> RosterEntry | None:
        return self._servers.get(server_name)

    def server_class(self, server_name: str) -> str | None:
        e = self._servers.get(server_name)
        return e.server_class if e is not None else None

    def pinned_keys(self, server_name: str) -> Mapping[str, VerifyKey]:
        """The server's current keys by key ID (empty if it is not a member)."""
        e = self._servers.get(server_name)
        return e.verify_keys if e is not None else {}

    def old_keys(self, server_name: str) -> Mapping[str, tuple[VerifyKey, int]]:
        """The server's former keys: key ID -> (key, expired_ts)."""
        e = self._servers.get(server_name)
        return e.old_verify_keys if e is not None else {}

    def is_stale(self, now_ms: int) -> bool:
        """No roster, or the current one is past ``valid_until_ts`` (still enforced)."""
        return self._current is None or self._current.valid_until_ts < now_ms

    def add_listener(self, fn: Listener) -> None:
        """``fn(old, new)`` is called after each accepted change of version (synchronously,
        after the new roster is installed; a listener must not raise)."""
        self._listeners.append(fn)

    # --- updating ----------------------------------------------------------------------
    def restore(self, doc: Mapping[str, Any]) -> Roster:
        """Install a persisted last good roster at start-up (signature checked, not expiry:
        an expired roster is still the one to enforce)."""
        if self._current is not None:
            raise RosterError("restore() is only for an empty state; use accept()")
        r = verify_roster(doc, self.pinned_key, self.signer_name)
        self._install(r)
        return r

    def accept(self, doc: Mapping[str, Any], now_ms: int) -> Roster:
        """Verify ``doc`` and make it current if it is the next version.

        Returns the current roster (unchanged if ``doc`` is identical to it).  Refusals raise
        ``RosterError`` and leave the current roster in place.
        """
        r = verify_roster(doc, self.pinned_key, self.signer_name)
        cur = self._current
        if cur is not None and r.sha256 == cur.sha256:
            return cur
        self._check_successor(cur, r)
        self._check_fresh(r, now_ms)
        self._install(r)
        return r

    def accept_chain(self, docs: Iterable[Mapping[str, Any]], now_ms: int) -> Roster:
        """Catch up over several versions: ``docs`` must hold every version after the
        current one up to the newest (any order; versions at or below the current one are
        ignored, except the current version itself, which must be identical).

        All or nothing: each link must chain, only the newest must be unexpired.
        """
        verified = [verify_roster(d, self.pinned_key, self.signer_name) for d in docs]
        by_version: dict[int, Roster] = {}
        for r in verified:
            seen = by_version.setdefault(r.version, r)
            if seen.sha256 != r.sha256:
                raise RosterError(
                    f"Two different documents for roster version {r.version}", reason="fork"
                )
        cur = self._current
        if cur is not None:
            mine = by_version.get(cur.version)
            if mine is not None and mine.sha256 != cur.sha256:
                raise RosterError(
                    f"Roster version {cur.version} in the chain differs from "
                    f"the accepted version {cur.version}",
                    reason="fork",
                )
            newer = [by_version[v] for v in sorted(by_version) if v > cur.version]
        else:
            newer = [by_version[v] for v in sorted(by_version)]
        if not newer:
            if cur is not None and by_version and max(by_version) <= cur.version:
                return cur
            raise RosterError("No roster version newer than the current one", reason="rollback")
        prev = cur
        for r in newer:
            self._check_successor(prev, r)
            prev = r
        self._check_fresh(newer[-1], now_ms)
        self._install(newer[-1])
        return newer[-1]

    # --- helpers -----------------------------------------------------------------------
    @staticmethod
    def _check_successor(cur: Roster | None, r: Roster) -> None:
        if cur is None:
            return
        if r.version < cur.version:
            raise RosterError(
                f"Refusing roster version {r.version}: older than the current "
                f"version {cur.version} (rollback)",
                reason="rollback",
            )
        if r.version == cur.version:
            raise RosterError(
                f"Refusing roster version {r.version}: it differs from the "
                f"accepted version {cur.version} (fork)",
                reason="fork",
            )
        if r.version > cur.version + 1:
            raise RosterError(
                f"Roster version {r.version} skips versions "
                f"{cur.version + 1}..{r.version - 1} after the current "
                f"version {cur.version}: fetch the intermediate versions",
                reason="gap",
            )
        if r.prev_sha256 != cur.sha256:
            raise RosterError(
                f"Roster version {r.version} does not chain: its prev_sha256 "
                f"is not the hash of version {cur.version}",
                reason="chain",
            )

    @staticmethod
    def _check_fresh(r: Roster, now_ms: int) -> None:
        if r.valid_until_ts < now_ms:
            raise RosterError(
                f"Roster version {r.version} expired at {r.valid_until_ts} (now {now_ms})",
                reason="expired",
            )

    def _install(self, r: Roster) -> None:
        old = self._current
        self._current = r
        self._servers = r.servers
        for fn in list(self._listeners):
            fn(old, r)
