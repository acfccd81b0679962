"""Validating a server-keys object (spec: server-server API "Retrieving server keys";
``data/api/server-server/definitions/keys.yaml``; rooms v5+ "Signing key validity period").

A response to ``GET /_matrix/key/v2/server`` (or one entry of a notary's ``server_keys``) is
accepted only if:

1. it is an object whose ``server_name`` is the server we asked about (case-sensitive);
2. ``valid_until_ts`` is an integer, ``verify_keys``/``old_verify_keys`` are objects of
   ``{key}`` / ``{key, expired_ts}`` with 32-byte unpadded-Base64 ed25519 keys (keys of other
   algorithms are ignored, not fatal);
3. it is signed by ``server_name`` with at least one key listed in its own ``verify_keys``,
   and every such signature verifies (``signatures`` are "signed using the verify_keys").

Validity: a current key is valid for signatures made up to the *lesser* of
``valid_until_ts`` and 7 days after we received the response ("Servers MUST use the lesser of
this field and 7 days into the future"); an old key is valid up to its ``expired_ts``.  Room
versions 1-4 ignore ``valid_until_ts``; Parta only speaks versions 10-12, which enforce it,
so the cap always applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, TypeGuard

from ..b64 import decode_base64
from ..errors import BadJSON
from ..keys import ALGORITHM, KeyFormatError, VerifyKey
from ..signing import signed_bytes, verify_raw

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


class InvalidKeyResponse(BadJSON):
    """A server-keys object that must not be trusted (shape, server name or signature)."""


@dataclass(frozen=True)
class ServerKeys:
    """A validated server-keys object."""

    server_name: str
    verify_keys: Mapping[str, VerifyKey]
    old_verify_keys: Mapping[str, tuple[VerifyKey, int]]  # key_id -> (key, expired_ts)
    valid_until_ts: int  # as published
    received_at_ms: int
    raw: dict[str, Any] = field(compare=False, repr=False)  # the object as received

    @property
    def effective_valid_until_ts(self) -> int:
        """``min(valid_until_ts, received + 7 days)``: the limit for current keys."""
        return min(self.valid_until_ts, self.received_at_ms + SEVEN_DAYS_MS)

    def key_valid_until(self, key_id: str) -> int | None:
        """Until when signatures by ``key_id`` are acceptable, or None if not listed."""
        if key_id in self.verify_keys:
            return self.effective_valid_until_ts
        old = self.old_verify_keys.get(key_id)
        return old[1] if old is not None else None

    def key(self, key_id: str) -> VerifyKey | None:
        if key_id in self.verify_keys:
            return self.verify_keys[key_id]
        old = self.old_verify_keys.get(key_id)
        return old[0] if old is not None else None

    def key_ids(self) -> set[str]:
        return set(self.verify_keys) | set(self.old_verify_keys)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_keys(obj: Mapping[str, Any], member: str, server: str, old: bool) -> dict[str, Any]:
    section = obj.get(member, {})
    if not isinstance(section, Mapping):
        raise InvalidKeyResponse(f"Keys of {server}: {member} must be an object")
    keys: dict[str, Any] = {}
    for key_id, entry in section.items():
        if not isinstance(key_id, str) or not key_id.startswith(ALGORITHM + ":"):
            continue  # other algorithms are not usable, but not an error
        if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
            raise InvalidKeyResponse(f"Keys of {server}: {member}.{key_id} needs a string 'key'")
        try:
            vk = VerifyKey.decode(key_id, entry["key"])
        except KeyFormatError as exc:
            raise InvalidKeyResponse(f"Keys of {server}: {exc.message}") from None
        if old:
            expired = entry.get("expired_ts")
            if not _is_int(expired):
                raise InvalidKeyResponse(
                    f"Keys of {server}: {member}.{key_id} needs an integer 'expired_ts'"
                )
            keys[key_id] = (vk, expired)
        else:
            keys[key_id] = vk
    return keys


def check_signed_by(
    obj: Mapping[str, Any],
    signer: str,
    keys: Mapping[str, VerifyKey],
    what: str,
    message: bytes | None = None,
) -> None:
    """Require ``signer``'s signature with at least one of ``keys``; all such must verify."""
    sigs = obj.get("signatures")
    by_signer = sigs.get(signer) if isinstance(sigs, Mapping) else None
    if not isinstance(by_signer, Mapping):
        raise InvalidKeyResponse(f"{what} is not signed by {signer}")
    used = [k for k in by_signer if k in keys]
    if not used:
        raise InvalidKeyResponse(
            f"{what} is not signed by {signer} with any of its keys "
            f"({', '.join(sorted(keys)) or 'none'})"
        )
    if message is None:
        try:
            message = signed_bytes(obj)
        except BadJSON as exc:
            raise InvalidKeyResponse(f"{what} cannot be verified: {exc.message}") from None
    for key_id in used:
        b64 = by_signer[key_id]
        try:
            raw = decode_base64(b64)
        except BadJSON:
            raise InvalidKeyResponse(f"{what}: signature {signer}/{key_id} is not Base64") from None
        if len(raw) != 64 or not verify_raw(keys[key_id].public_bytes, raw, message):
            raise InvalidKeyResponse(f"{what}: signature {signer}/{key_id} does not verify")


def parse_server_keys(obj: Any, expected_server: str, received_at_ms: int) -> ServerKeys:
    """Validate a server-keys object for ``expected_server`` (see module docs, steps 1-3)."""
    if not isinstance(obj, Mapping):
        raise InvalidKeyResponse(f"Keys of {expected_server}: response is not a JSON object")
    # 1. The server name must be the one asked for.
    if obj.get("server_name") != expected_server:
        raise InvalidKeyResponse(
            f"Keys response names server {obj.get('server_name')!r}, expected {expected_server!r}"
        )
    # 2. Shape.
    valid_until = obj.get("valid_until_ts")
    if not _is_int(valid_until):
        raise InvalidKeyResponse(f"Keys of {expected_server}: valid_until_ts must be an integer")
    if "verify_keys" not in obj:
        raise InvalidKeyResponse(f"Keys of {expected_server}: missing verify_keys")
    verify_keys = _decode_keys(obj, "verify_keys", expected_server, old=False)
    old_keys = _decode_keys(obj, "old_verify_keys", expected_server, old=True)
    # 3. Self-signed with its own current keys.
    check_signed_by(obj, expected_server, verify_keys, f"Keys of {expected_server}")
    return ServerKeys(
        expected_server, verify_keys, old_keys, valid_until, received_at_ms, dict(obj)
    )
