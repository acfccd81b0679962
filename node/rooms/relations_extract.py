"""Which relation an event forms, and which replacements are valid: pure rules.

Spec: client-server API "Forming relationships between events" (a relation is the
*cleartext* ``content.m.relates_to`` with a ``rel_type`` and an ``event_id``; rich replies'
``m.in_reply_to`` is not one; relations that break the schema are ignored; parent and
child must be in the same room), "Event replacements" > "Validity of replacement events"
(https://spec.matrix.org/v1.16/client-server-api/#validity-of-replacement-events) and
"Threaded read receipts" (which thread an event is in).

Called for every persisted event, so the common case -- no ``m.relates_to`` -- costs one
dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.events.model import Event

THREAD = "m.thread"
REPLACE = "m.replace"
REFERENCE = "m.reference"
ANNOTATION = "m.annotation"
ENCRYPTED = "m.room.encrypted"
MAX_ID_CHARS = 255  # the String(255) columns of schema/relations.py


@dataclass(frozen=True, slots=True)
class Relation:
    parent_id: str
    rel_type: str
    # m.replace only: the child on its own may replace its parent (see ``replace_ok``).
    replace_ok: bool
    # m.annotation only: the annotation key, when it is a string that fits the column.
    key: str | None = None


def _plain_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and "\x00" not in value
        and value.isascii()
    )


def relation_of(ev: Event) -> Relation | None:
    """The relation ``ev`` forms, or None.  Redacted events form none (``m.relates_to``
    is not kept by the redaction algorithm)."""
    content = ev.pdu.get("content")
    if not isinstance(content, dict):
        return None
    rel = content.get("m.relates_to")
    if rel is None or not isinstance(rel, dict):
        return None
    rel_type = rel.get("rel_type")
    parent = rel.get("event_id")
    if not isinstance(rel_type, str) or not isinstance(parent, str):
        return None
    if not _plain_id(rel_type) or not _plain_id(parent) or not parent.startswith("$"):
        return None
    if parent == ev.event_id:
        return None
    key = rel.get("key") if rel_type == ANNOTATION else None
    return Relation(
        parent,
        rel_type,
        rel_type == REPLACE and replace_ok(ev.pdu),
        key if _storable_key(key) else None,
    )


def _storable_key(key: object) -> bool:
    """Any string may be a key (emoji, text); one that cannot be a ``String(255)`` value
    (too long, NUL, lone surrogates) is kept out of the duplicate check."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_ID_CHARS or "\x00" in key:
        return False
    try:
        key.encode()
    except UnicodeEncodeError:
        return False
    return True


def replace_ok(pdu: dict) -> bool:
    """The rules of a valid replacement that concern the replacement alone: it is not a
    state event and has ``m.new_content`` -- inside the ciphertext when encrypted, which
    the server cannot check (so an encrypted replacement passes)."""
    if "state_key" in pdu:
        return False
    if pdu.get("type") == ENCRYPTED:
        return True
    content = pdu.get("content")
    return isinstance(content, dict) and isinstance(content.get("m.new_content"), dict)


@dataclass(frozen=True, slots=True)
class Original:
    """What the replacement rules need of an original event (as served)."""

    room_id: str
    sender: str
    type: str
    is_state: bool
    is_replacement: bool  # it has itself a ``rel_type`` of m.replace
    redacted: bool


def original_of(ev: Event, redacted: bool) -> Original:
    rel = relation_of(ev)
    return Original(
        ev.room_id,
        ev.sender,
        ev.type,
        "state_key" in ev.pdu,
        rel is not None and rel.rel_type == REPLACE,
        redacted,
    )


def may_be_replaced(orig: Original) -> bool:
    """Can ``orig`` have a bundled ``m.replace`` at all?  Not a state event, not itself a
    replacement, and not redacted ("If the original event is redacted, any m.replace
    relationship should not be bundled with it")."""
    return not (orig.is_state or orig.is_replacement or orig.redacted)


def replaces(orig: Original, room_id: str, sender: str, etype: str, ok: bool) -> bool:
    """Is a stored replacement row (its room, sender, type and ``replace_ok``) a valid
    replacement of ``orig``?"""
    return (
        ok
        and may_be_replaced(orig)
        and room_id == orig.room_id
        and sender == orig.sender
        and etype == orig.type
    )


def newer_replacement(a: tuple[int, str], b: tuple[int, str]) -> bool:
    """Is replacement ``a`` (origin_server_ts, event_id) more recent than ``b``?  "The
    most recent event is determined by comparing origin_server_ts; if two or more
    replacement events have identical origin_server_ts, the event with the
    lexicographically largest event_id is treated as more recent." """
    return a > b
