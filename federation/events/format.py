"""PDU format validation for room versions 10, 11 and 12.

Spec: server-server API "Checks performed on receipt of a PDU", step 1 ("Is a valid event,
otherwise it is dropped"); the PDU schemas ``pdu_v6`` (v10), ``pdu_v11`` and ``pdu_v12``
(``data/api/server-server/definitions``); client-server API "Size limits"; appendices
"Canonical JSON", "User Identifiers", "Room IDs", "Event IDs", "Server Name"; rooms v6
fragment "Canonical JSON" ("Servers MUST strictly enforce the JSON format").

``check_pdu_format`` raises ``BadJSON`` (``M_BAD_JSON``) naming the first problem.  What is a
*format* error here (the event is dropped) and what is left to the authorization rules (the
event is rejected) follows the spec: e.g. a v12 ``m.room.create`` that carries a ``room_id``
is well-formed but rejected by auth rule 1.2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from ..canonical_json import MAX_SAFE_INT, MIN_SAFE_INT, encode_canonical_json
from ..errors import BadJSON
from ..identifiers import (  # noqa: F401 - re-exported
    _EVENT_ID_V4,
    MAX_ID_BYTES,
    _too_long,
    is_valid_event_id,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
)
from ..room_versions import RoomVersion
from .hashes import encode_validated

MAX_PDU_BYTES = 65536  # "Size limits": the complete event, canonical JSON
MAX_TYPE_BYTES = 255  # `type`
MAX_STATE_KEY_BYTES = 255  # `state_key`
MAX_PREV_EVENTS = 20  # pdu schema: "Must contain less than or equal to 20 events"
MAX_AUTH_EVENTS = 10  # pdu schema: "Must contain less than or equal to 10 events"

# --- the PDU -----------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _bad(message: str) -> BadJSON:
    return BadJSON(f"Invalid PDU: {message}")


def _require(pdu: Mapping[str, Any], key: str) -> Any:
    try:
        return pdu[key]
    except KeyError:
        raise _bad(f"missing required key '{key}'") from None


def _is_int(value: Any) -> TypeGuard[int]:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _check_int(key: str, value: Any) -> None:
    if not _is_int(value):
        raise _bad(f"'{key}' must be an integer, not {_type_name(value)}")
    if not MIN_SAFE_INT <= value <= MAX_SAFE_INT:
        raise _bad(f"'{key}' is outside the canonical JSON integer range: {value}")


def _check_str(key: str, value: Any, max_bytes: int | None = None) -> None:
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string, not {_type_name(value)}")
    if max_bytes is not None and _too_long(value, max_bytes):
        raise _bad(f"'{key}' is longer than {max_bytes} bytes")


def _check_event_id_list(key: str, value: Any, limit: int) -> None:
    if type(value) is not list and not isinstance(value, (list, tuple)):
        raise _bad(f"'{key}' must be an array of event IDs, not {_type_name(value)}")
    if len(value) > limit:
        raise _bad(f"'{key}' lists {len(value)} events; at most {limit} are allowed")
    match = _EVENT_ID_V4.match
    try:
        if all(map(match, value)):
            return
    except TypeError:  # a non-string entry
        pass
    for i, eid in enumerate(value):
        if not isinstance(eid, str) or match(eid) is None:
            raise _bad(f"{key}[{i}] is not a valid event ID: {eid!r:.80}")


_SHORT = MAX_ID_BYTES // 4  # strings this short fit any 255-byte limit whatever they hold
_STR_TYPE = frozenset((str,))


def _fast_well_formed(pdu: dict[str, Any], room_version: RoomVersion) -> bool:
    """The common case in one pass: True only if ``_check_structure`` would pass.

    Anything unusual (subclasses, long strings, optional keys out of the ordinary) returns
    False and gets the full check, which is the authority and names the problem.
    """
    get = pdu.get
    event_type = get("type")
    depth = get("depth")
    ts = get("origin_server_ts")
    prev = get("prev_events")
    auth = get("auth_events")
    hashes = get("hashes")
    sigs = get("signatures")
    if not (
        type(event_type) is str
        and len(event_type) <= _SHORT
        and type(get("content")) is dict
        and type(depth) is int
        and MIN_SAFE_INT <= depth <= MAX_SAFE_INT
        and type(ts) is int
        and MIN_SAFE_INT <= ts <= MAX_SAFE_INT
        and type(prev) is list
        and len(prev) <= MAX_PREV_EVENTS
        and type(auth) is list
        and len(auth) <= MAX_AUTH_EVENTS
        and type(hashes) is dict
        and type(hashes.get("sha256")) is str
        and type(sigs) is dict
    ):
        return False
    for by_key in sigs.values():
        if type(by_key) is not dict or not set(map(type, by_key.values())) <= _STR_TYPE:
            return False
    if "state_key" in pdu:
        sk = pdu["state_key"]
        if type(sk) is not str or len(sk) > _SHORT:
            return False
    if "unsigned" in pdu and type(pdu["unsigned"]) is not dict:
        return False
    if "redacts" in pdu or "event_id" in pdu or event_type == "m.room.redaction":
        return False
    hash_room_ids = room_version.event_format.room_id_is_create_event_hash
    room_id = get("room_id")
    if room_id is None:
        if not (hash_room_ids and event_type == "m.room.create" and "room_id" not in pdu):
            return False
    elif type(room_id) is not str or not _seen_valid(
        _valid_room_ids[hash_room_ids], room_id, lambda r: is_valid_room_id(r, room_version)
    ):
        return False
    sender = get("sender")
    if type(sender) is not str or not _seen_valid(_valid_user_ids, sender, is_valid_user_id):
        return False
    match = _EVENT_ID_V4.match
    try:
        return all(map(match, prev)) and all(map(match, auth))
    except TypeError:
        return False


# Senders and rooms repeat from event to event: remember which strings passed the grammar.
_SEEN_LIMIT = 4096
_valid_user_ids: dict[str, bool] = {}
_valid_room_ids: dict[bool, dict[str, bool]] = {False: {}, True: {}}


def _seen_valid(cache: dict[str, bool], value: str, check: Any) -> bool:
    ok = cache.get(value)
    if ok is None:
        ok = check(value)
        if len(cache) >= _SEEN_LIMIT:
            cache.clear()
        cache[value] = ok
    return ok


def check_pdu_structure(pdu: Any, room_version: RoomVersion) -> None:
    """Required keys, their types, identifier grammar and per-key size limits.

    Does not look inside ``content``/``unsigned`` values nor measure the whole event; see
    ``check_pdu_format`` for the complete check.
    """
    if type(pdu) is dict and _fast_well_formed(pdu, room_version):
        return
    _check_structure(pdu, room_version)


def _check_structure(pdu: Any, room_version: RoomVersion) -> None:
    """The full structure check, naming the first problem."""
    if not isinstance(pdu, Mapping):
        raise _bad(f"a PDU must be a JSON object, not {_type_name(pdu)}")

    # type: string, "MUST NOT exceed 255 bytes"
    event_type = _require(pdu, "type")
    _check_str("type", event_type, MAX_TYPE_BYTES)

    # sender: a user ID (historical grammar accepted), at most 255 bytes
    sender = _require(pdu, "sender")
    _check_str("sender", sender)
    if not is_valid_user_id(sender):
        raise _bad(f"'sender' is not a valid user ID: {sender!r:.80}")

    # room_id: required, except on a v12 m.room.create (whose ID *is* the room ID).
    # A v12 create event that carries one anyway is rejected by auth rule 1.2, not here.
    v12_create = (
        room_version.event_format.room_id_is_create_event_hash and event_type == "m.room.create"
    )
    if "room_id" in pdu or not v12_create:
        room_id = _require(pdu, "room_id")
        _check_str("room_id", room_id)
        if not is_valid_room_id(room_id, room_version):
            raise _bad(
                f"'room_id' is not a valid room ID for room version "
                f"{room_version.identifier}: {room_id!r:.80}"
            )

    # state_key: optional string, "MUST NOT exceed 255 bytes"
    if "state_key" in pdu:
        _check_str("state_key", pdu["state_key"], MAX_STATE_KEY_BYTES)

    content = _require(pdu, "content")
    if not isinstance(content, Mapping):
        raise _bad(f"'content' must be an object, not {_type_name(content)}")

    _check_int("depth", _require(pdu, "depth"))
    _check_int("origin_server_ts", _require(pdu, "origin_server_ts"))
    _check_event_id_list("prev_events", _require(pdu, "prev_events"), MAX_PREV_EVENTS)
    _check_event_id_list("auth_events", _require(pdu, "auth_events"), MAX_AUTH_EVENTS)

    hashes = _require(pdu, "hashes")
    if not isinstance(hashes, Mapping):
        raise _bad(f"'hashes' must be an object, not {_type_name(hashes)}")
    if not isinstance(hashes.get("sha256"), str):
        raise _bad("'hashes.sha256' must be a string (the content hash)")

    signatures = _require(pdu, "signatures")
    if not isinstance(signatures, Mapping):
        raise _bad(f"'signatures' must be an object, not {_type_name(signatures)}")
    for server, by_key in signatures.items():
        if not isinstance(by_key, Mapping):
            raise _bad(f"'signatures.{server}' must be an object of key ID -> signature")
        for key_id, sig in by_key.items():
            if not isinstance(sig, str):
                raise _bad(f"'signatures.{server}.{key_id}' must be a string")

    if "unsigned" in pdu and not isinstance(pdu["unsigned"], Mapping):
        raise _bad(f"'unsigned' must be an object, not {_type_name(pdu['unsigned'])}")

    if room_version.redaction.v11_rules:
        # v11 moved `redacts` into the content of m.room.redaction events.
        if (
            event_type == "m.room.redaction"
            and "redacts" in content
            and not is_valid_event_id(content["redacts"])
        ):
            raise _bad("'content.redacts' must be an event ID")
    elif "redacts" in pdu and not is_valid_event_id(pdu["redacts"]):
        # v10 (pdu_v6 schema): top-level `redacts` on redaction events.
        raise _bad("'redacts' must be an event ID")

    if "event_id" in pdu:  # not part of v4+ PDUs, but limited by "Size limits" if sent
        _check_str("event_id", pdu["event_id"], MAX_ID_BYTES)


def check_pdu_size(encoded: bytes) -> None:
    """The complete event, signatures included, must fit in 65536 bytes of canonical JSON."""
    if len(encoded) > MAX_PDU_BYTES:
        raise _bad(
            f"the event is {len(encoded)} bytes of canonical JSON; the limit is {MAX_PDU_BYTES}"
        )


# Keys whose values check_pdu_structure has fully typed (strings, in-range integers, lists
# of strings, objects of objects of strings): no float can hide there.
_TYPED_BY_STRUCTURE = frozenset(
    (
        "type",
        "sender",
        "room_id",
        "state_key",
        "depth",
        "origin_server_ts",
        "prev_events",
        "auth_events",
        "signatures",
    )
)


_PLAIN_SCALARS = frozenset((str, int, bool, type(None)))


def _untyped_parts_plain(pdu: dict[str, Any]) -> bool:
    """True if the other values hold only exact JSON types and no float anywhere."""
    stack = [v for k, v in pdu.items() if k not in _TYPED_BY_STRUCTURE]
    pop, push = stack.pop, stack.append
    plain = _PLAIN_SCALARS
    while stack:
        v = pop()
        t = type(v)
        if t is dict:
            values = v.values()
        elif t is list:
            values = v
        elif t in plain:
            continue
        else:
            return False  # float, or a subclass: the full encoder decides and explains
        for x in values:
            tx = type(x)
            if tx in plain:
                continue
            if tx is dict or tx is list:
                push(x)
            else:
                return False
    return True


def check_pdu_format_and_encode(pdu: Any, room_version: RoomVersion) -> bytes:
    """``check_pdu_format`` returning the canonical JSON of the whole PDU."""
    check_pdu_structure(pdu, room_version)
    # Strict canonical JSON (v6+): no floats, integers within +-(2**53 - 1), string keys.
    # When only plain values remain to check, encode_validated's strict encoder refuses
    # the rest (out-of-range integers, non-string keys, lone surrogates) by falling back to
    # the full canonical encoder, which names the problem.
    encode = (
        encode_validated
        if type(pdu) is dict and _untyped_parts_plain(pdu)
        else encode_canonical_json
    )
    try:
        encoded = encode(pdu)
    except BadJSON as exc:
        raise _bad(exc.message) from None
    check_pdu_size(encoded)
    return encoded


def check_pdu_format(pdu: Any, room_version: RoomVersion) -> None:
    """Raise ``BadJSON`` unless ``pdu`` is a well-formed PDU of ``room_version``."""
    check_pdu_format_and_encode(pdu, room_version)
