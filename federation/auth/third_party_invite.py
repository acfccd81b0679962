"""Authorization rule 5.4.1 (v10/v11: 4.4.1): invites carrying ``third_party_invite``.

Spec: rooms v10-v12 "Authorisation rules" rule 5.4.1; server-server API "Third-party
invites" -> "Verifying the invite"; client-server API ``m.room.third_party_invite``
(``public_key`` and ``public_keys[].public_key``: ed25519 keys in unpadded Base64, standard
or URL-safe alphabet).  The ``signed`` block is verified like any signed JSON (appendix
"Checking for a signature") against each public key, under each key ID it is signed with.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from ..b64 import decode_base64
from ..errors import BadJSON
from ..events.model import Event, StateKey
from ..keys import VerifyKey
from ..signing import SignatureError, verify_json
from .errors import AuthError
from .selection import MEMBER, THIRD_PARTY_INVITE


def _decode_public_key(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    for urlsafe in (False, True):
        try:
            raw = decode_base64(text, urlsafe=urlsafe)
        except BadJSON:
            continue
        if len(raw) == 32:
            return raw
    return None


def public_keys_of(tpi_content: Mapping[str, Any]) -> Iterator[bytes]:
    """The decodable ed25519 keys of an ``m.room.third_party_invite`` content."""
    # 5.4.1.7.1 A single public key in the public_key property.
    raw = _decode_public_key(tpi_content.get("public_key"))
    if raw is not None:
        yield raw
    # 5.4.1.7.2 A list of public keys in the public_keys property.
    keys = tpi_content.get("public_keys")
    if isinstance(keys, list):
        for entry in keys:
            if isinstance(entry, Mapping):
                raw = _decode_public_key(entry.get("public_key"))
                if raw is not None:
                    yield raw


def signed_matches_any_key(signed: Mapping[str, Any], tpi_content: Mapping[str, Any]) -> bool:
    """True if any signature in ``signed`` verifies with any of the invite's public keys."""
    signatures = signed.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    keys = list(public_keys_of(tpi_content))
    for server_name, by_key in signatures.items():
        if not isinstance(by_key, Mapping):
            continue
        for key_id in by_key:
            if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                continue
            for raw in keys:
                try:
                    verify_json(signed, server_name, VerifyKey(key_id, raw))
                    return True
                except (SignatureError, BadJSON):
                    continue
    return False


def check_third_party_invite(event: Event, state: Mapping[StateKey, Event]) -> None:
    """Rule 5.4.1: return to allow, raise ``AuthError`` to reject."""
    rv = event.room_version
    target = event.state_key
    tpi = event.content["third_party_invite"]

    # 5.4.1.1 If target user is banned, reject.
    target_member = state.get((MEMBER, target)) if target is not None else None
    if target_member is not None and target_member.content.get("membership") == "ban":
        raise AuthError(rv, "5.4.1.1", f"{target} is banned")
    # 5.4.1.2 If content.third_party_invite does not have a signed property, reject.
    signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
    if not isinstance(signed, Mapping):
        raise AuthError(rv, "5.4.1.2", "third_party_invite has no signed object")
    # 5.4.1.3 If signed does not have mxid and token properties, reject.
    if "mxid" not in signed or "token" not in signed:
        raise AuthError(rv, "5.4.1.3", "third_party_invite.signed lacks mxid or token")
    # 5.4.1.4 If mxid does not match state_key, reject.
    mxid, token = signed["mxid"], signed["token"]
    if mxid != target:
        raise AuthError(rv, "5.4.1.4", "third_party_invite.signed.mxid does not match state_key")
    # 5.4.1.5 If there is no m.room.third_party_invite event in the current room state
    # with state_key matching token, reject.
    tpi_event = state.get((THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    if tpi_event is None:
        raise AuthError(rv, "5.4.1.5", f"no m.room.third_party_invite for token {token!r}")
    # 5.4.1.6 If sender does not match sender of the m.room.third_party_invite, reject.
    if event.sender != tpi_event.sender:
        raise AuthError(
            rv, "5.4.1.6", "sender does not match the sender of m.room.third_party_invite"
        )
    # 5.4.1.7 If any signature in signed matches any public key in the
    # m.room.third_party_invite event, allow.
    if signed_matches_any_key(signed, tpi_event.content):
        return
    # 5.4.1.8 Otherwise, reject.
    raise AuthError(
        rv, "5.4.1.8", "no signature in third_party_invite.signed matches the invite's public keys"
    )
