"""Building, hashing and signing outgoing events.

Spec: server-server API "Signing Events" > "Adding hashes and signatures to outgoing events"
(content hash into ``hashes.sha256``, then sign the *redacted* event, then copy the
signature back); rooms v10-v12 "Event format"; rooms v11 "Event format" (``m.room.create``
has no ``creator``; ``redacts`` moves into ``content``); rooms v12 "Event format" and auth
rule 1.2 (the create event carries no ``room_id``: the room ID is derived from its event ID).

Redactions in v11+: the spec moves ``redacts`` "from a top-level event property to a
property under the event content"; the top-level copy is only something servers add when
*serving* such events over the client-server API.  So the PDU built here carries it in
``content`` only (v10: top level only).

Hot path: the full event is encoded once for the content hash and the redacted event once
for the signature; the SHA-256 of those same signed bytes is the reference hash, so the
event ID costs no further encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..b64 import encode_base64
from ..canonical_json import MAX_SAFE_INT, encode_canonical_json
from ..errors import InvalidParam
from ..identifiers import is_valid_user_id
from ..keys import SigningKey
from ..room_versions import RoomVersion
from .format import MAX_PDU_BYTES, check_pdu_size, check_pdu_structure
from .hashes import (
    _signing_view,
    copy_checked,
    encode_validated,
    event_id_from_reference_hash,
)
from .model import Event

_sha256 = hashlib.sha256
# ',"hashes":{"sha256":"<43>"}' + ',"signatures":{"":{"":"<86>"}}' with room to spare.
_SIGNED_OVERHEAD_BOUND = 256

# The largest depth an event can have: the largest canonical JSON integer (2**53 - 1).
MAX_DEPTH = MAX_SAFE_INT


def next_depth(prev_depth: int) -> int:
    """The depth of a new event whose deepest prev event has depth ``prev_depth``.

    Server-server API "PDUs" (https://spec.matrix.org/v1.16/server-server-api/#pdus, the
    room versions' event format): depth is "the maximum depth of the `prev_events`, plus
    one. Must be less than the maximum value for an integer (2^53 - 1). If the room's
    depth is already at the limit, the depth must be set to the limit."  A remote server
    may send a valid event at that limit; plus one would make every event built on top of
    it unencodable, so no local member could send, change state or even leave the room.
    """
    return prev_depth + 1 if prev_depth < MAX_DEPTH else MAX_DEPTH


def sign_event(
    pdu: dict[str, Any], room_version: RoomVersion, server_name: str, signing_key: SigningKey
) -> dict[str, Any]:
    """Add ``server_name``'s signature over the redacted ``pdu`` (in place) and return it.

    For events that already carry their hashes, e.g. counter-signing an invite or a
    restricted join (``join_authorised_via_users_server``).
    """
    signed = encode_canonical_json(_signing_view(pdu, room_version))
    _add_signature(pdu, server_name, signing_key, signed)
    return pdu


def _add_signature(
    pdu: dict[str, Any], server_name: str, signing_key: SigningKey, signed_bytes: bytes
) -> None:
    sig = encode_base64(signing_key.sign(signed_bytes))
    sigs = pdu.get("signatures")
    if not isinstance(sigs, dict):
        sigs = pdu["signatures"] = {}
    by_server = sigs.get(server_name)
    if not isinstance(by_server, dict):
        by_server = sigs[server_name] = {}
    by_server[signing_key.key_id] = sig


def build_event(
    room_version: RoomVersion,
    *,
    server_name: str,
    signing_key: SigningKey,
    type: str,
    sender: str,
    content: Mapping[str, Any],
    room_id: str | None,
    prev_events: list[str],
    auth_events: list[str],
    depth: int,
    origin_server_ts: int,
    state_key: str | None = None,
    redacts: str | None = None,
    unsigned: dict[str, Any] | None = None,
) -> Event:
    """Build, hash and sign a PDU; return it as an ``Event`` with its event ID.

    ``room_id`` must be None exactly for a v12 ``m.room.create``.  ``redacts`` (for
    ``m.room.redaction``) goes top level in v10 and into ``content`` from v11.  ``content``
    and ``unsigned`` are copied, never mutated.  Raises ``InvalidParam`` for arguments that
    do not fit the room version and ``BadJSON`` for a PDU the format rules would refuse
    (wrong types, bad IDs, floats, over 64 KiB).
    """
    v12_create = room_version.event_format.room_id_is_create_event_hash and type == "m.room.create"
    if v12_create and room_id is not None:
        raise InvalidParam(
            f"m.room.create in room version {room_version.identifier} has no room_id: "
            "the room ID is derived from the create event's ID"
        )
    if not v12_create and room_id is None:
        raise InvalidParam("room_id is required (only a v12 m.room.create has none)")

    # Validates content (canonical JSON: no floats, ints in range) and copies it in one go.
    body = _copy_checked(content)
    if redacts is not None and room_version.redaction.v11_rules:
        if body.get("redacts", redacts) != redacts:
            raise InvalidParam("content.redacts and redacts disagree")
        body["redacts"] = redacts

    pdu: dict[str, Any] = {
        "type": type,
        "sender": sender,
        "content": body,
        "prev_events": list(prev_events),
        "auth_events": list(auth_events),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None and not room_version.redaction.v11_rules:
        pdu["redacts"] = redacts

    # 1. Content hash over the full event (it has no unsigned/signatures/hashes yet).
    hashed = encode_validated(pdu)
    pdu["hashes"] = {"sha256": encode_base64(_sha256(hashed).digest())}
    # 2. Sign the redacted event; its bytes' SHA-256 is also the reference hash.
    pdu["signatures"] = {}
    signed = encode_validated(_signing_view(pdu, room_version))
    _add_signature(pdu, server_name, signing_key, signed)
    event_id = event_id_from_reference_hash(_sha256(signed).digest())
    # The format rules for the result (types, identifier grammar, per-key limits): checked
    # once the PDU is complete; a refusal only wastes the signature.
    check_pdu_structure(pdu, room_version)

    if unsigned is not None:
        pdu["unsigned"] = _copy_checked(unsigned)
    # 3. Size limit of the complete event.  Without `unsigned`, the complete event is the
    # hashed bytes plus `hashes` and one signature: far below the limit, skip encoding it.
    if (
        unsigned is not None
        or len(hashed) + _SIGNED_OVERHEAD_BOUND + len(server_name) + len(signing_key.key_id)
        > MAX_PDU_BYTES
    ):
        check_pdu_size(encode_validated(pdu))
    return Event(pdu, room_version, event_id=event_id)


def build_create_event(
    room_version: RoomVersion,
    *,
    server_name: str,
    signing_key: SigningKey,
    creator: str,
    content: Mapping[str, Any],
    origin_server_ts: int,
    room_id: str | None = None,
) -> Event:
    """Build the ``m.room.create`` event that starts a room.

    * v10: ``room_id`` required (``!opaque:<creator's server>``, auth rule 1.2); ``content``
      gets ``creator``.
    * v11: ``room_id`` required; no ``creator`` is added (the sender is the creator).
    * v12: ``room_id`` must be None; the room ID is ``Event.room_id`` of the result.

    ``content.room_version`` is filled in when absent (a missing one means version "1").
    """
    if not is_valid_user_id(creator):
        raise InvalidParam(f"creator {creator!r} is not a valid user ID")
    body = dict(content)
    body.setdefault("room_version", room_version.identifier)
    if body["room_version"] != room_version.identifier:
        raise InvalidParam(
            f"content.room_version {body['room_version']!r} does not match "
            f"room version {room_version.identifier}"
        )
    if not room_version.auth.implicit_room_creator:
        body["creator"] = creator  # v10 auth rule 1.4 requires it
    if room_version.event_format.room_id_is_create_event_hash:
        if room_id is not None:
            raise InvalidParam(
                f"room version {room_version.identifier} derives the room "
                "ID from the create event; do not pass room_id"
            )
    else:
        if room_id is None:
            raise InvalidParam(
                f"room version {room_version.identifier} needs a room_id such as '!opaque:server'"
            )
        if room_id.partition(":")[2] != creator.partition(":")[2]:
            raise InvalidParam("the room ID's server must be the creator's server (auth rule 1.2)")
    return build_event(
        room_version,
        server_name=server_name,
        signing_key=signing_key,
        type="m.room.create",
        sender=creator,
        content=body,
        room_id=room_id,
        prev_events=[],
        auth_events=[],
        depth=1,
        origin_server_ts=origin_server_ts,
        state_key="",
    )


def _copy_checked(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object, refusing what canonical JSON refuses."""
    if type(value) is not dict:
        if not isinstance(value, Mapping):
            raise InvalidParam(f"expected a JSON object, got {type(value).__name__}")
        value = dict(value)
    copied: dict[str, Any] = copy_checked(value)
    return copied
