"""Content hashes, reference hashes, event IDs and v12 room IDs.

Spec: server-server API "Signing Events" > "Calculating the content hash for an event" and
"Calculating the reference hash for an event"; rooms "Event IDs" (v4 fragment, used by
v10-v12): ``$`` + URL-safe unpadded Base64 of the reference hash; rooms v12 "Event format"
and appendix "Room IDs": a v12 room ID is the create event's ID with ``!`` instead of ``$``.

* content hash: SHA-256 of the canonical JSON of the event without ``unsigned``,
  ``signatures`` and ``hashes`` (covers the *unredacted* content).
* reference hash: SHA-256 of the canonical JSON of the *redacted* event without
  ``signatures`` and ``unsigned``.  These are exactly the bytes the origin server signs
  ("Adding hashes and signatures to outgoing events"), so ``redacted_signing_bytes`` serves
  signing, signature checks and the event ID with one encoding.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from ..b64 import decode_base64, encode_base64
from ..canonical_json import encode_canonical_json
from ..errors import BadJSON
from ..room_versions import RoomVersion
from .redaction import redacted_view

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]  # the fallback tests for None

_sha256 = hashlib.sha256
_a2b_base64 = binascii.a2b_base64
_NOT_IN_CONTENT_HASH = frozenset(("unsigned", "signatures", "hashes"))

if _orjson is not None:
    _dumps = _orjson.dumps
    _DUMPS_OPTS = _orjson.OPT_SORT_KEYS | _orjson.OPT_STRICT_INTEGER
    _DumpsError = _orjson.JSONEncodeError

    def encode_validated(value: Any) -> bytes:
        """Canonical JSON of a value whose *values* were already validated.

        For views (sub-dicts) of a PDU that went through ``encode_canonical_json`` once:
        the validation walk is not repeated.  orjson with sorted keys and the 53-bit integer
        limit writes the same bytes as the canonical encoder (the canonical-JSON property
        tests compare them); anything it refuses goes through the full checked encoder.
        """
        try:
            return _dumps(value, option=_DUMPS_OPTS)
        except _DumpsError:
            return encode_canonical_json(value)

    _loads = _orjson.loads
else:  # pragma: no cover
    import json as _json

    encode_validated = encode_canonical_json
    _loads = _json.loads


def decode_unpadded_base64(text: Any) -> bytes | None:
    """Decode (unpadded) standard Base64 as ``b64.decode_base64`` does; None if malformed.

    The common case goes straight to the C decoder in strict mode (no regex validation).
    """
    if type(text) is str:
        rem = len(text) % 4
        if rem != 1:
            try:
                return _a2b_base64(text + "=="[: (4 - rem) % 4], strict_mode=True)
            except (binascii.Error, ValueError):
                pass
    try:
        return decode_base64(text)
    except BadJSON:
        return None


def copy_checked(value: Any) -> Any:
    """An independent deep copy of a JSON value, refusing what canonical JSON refuses."""
    return _loads(encode_canonical_json(value))


# --- content hash ------------------------------------------------------------------------


def _content_hash_view(pdu: Mapping[str, Any]) -> dict[str, Any]:
    # "First, any existing unsigned, signatures, and hashes properties are removed."
    return {k: v for k, v in pdu.items() if k not in _NOT_IN_CONTENT_HASH}


def compute_content_hash(pdu: Mapping[str, Any]) -> bytes:
    """SHA-256 (32 raw bytes) of the canonical JSON of ``pdu`` without
    ``unsigned``/``signatures``/``hashes``.  Raises ``CanonicalJSONError`` on floats etc."""
    return _sha256(encode_canonical_json(_content_hash_view(pdu))).digest()


def add_content_hash(pdu: dict[str, Any]) -> dict[str, Any]:
    """Set ``pdu["hashes"] = {"sha256": <unpadded Base64>}`` in place and return ``pdu``."""
    pdu["hashes"] = {"sha256": encode_base64(compute_content_hash(pdu))}
    return pdu


def claimed_content_hash(pdu: Mapping[str, Any]) -> bytes | None:
    """The decoded ``hashes.sha256`` of ``pdu``, or None if absent or malformed."""
    hashes = pdu.get("hashes")
    if type(hashes) is not dict and not isinstance(hashes, Mapping):
        return None
    raw = decode_unpadded_base64(hashes.get("sha256"))
    return raw if raw is not None and len(raw) == 32 else None


def check_content_hash(pdu: Mapping[str, Any]) -> bool:
    """True if ``hashes.sha256`` is present and equals the content hash of ``pdu``."""
    claimed = claimed_content_hash(pdu)
    return claimed is not None and claimed == compute_content_hash(pdu)


# --- reference hash and event ID ---------------------------------------------------------


def _signing_view(pdu: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    view = redacted_view(pdu, room_version)
    view.pop("signatures", None)  # `unsigned` is never kept by redaction
    return view


def redacted_signing_bytes(pdu: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """Canonical JSON of the redacted ``pdu`` without ``signatures``/``unsigned``.

    The origin server signs these bytes, and their SHA-256 is the reference hash.
    """
    return encode_canonical_json(_signing_view(pdu, room_version))


def compute_reference_hash(pdu: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """The reference hash (32 raw bytes): redact, drop signatures/unsigned, SHA-256."""
    return _sha256(redacted_signing_bytes(pdu, room_version)).digest()


def event_id_from_reference_hash(reference_hash: bytes) -> str:
    return "$" + encode_base64(reference_hash, urlsafe=True)


def compute_event_id(pdu: Mapping[str, Any], room_version: RoomVersion) -> str:
    """``$`` + URL-safe unpadded Base64 of the reference hash (event ID format v4)."""
    return event_id_from_reference_hash(compute_reference_hash(pdu, room_version))


def room_id_from_create_event_id(event_id: str) -> str:
    """Room version 12: the room ID is the create event's ID with the sigil ``!``."""
    if not isinstance(event_id, str) or not event_id.startswith("$") or len(event_id) < 2:
        raise BadJSON(f"Not an event ID: {event_id!r}")
    return "!" + event_id[1:]
