"""The redaction algorithm for room versions 10, 11 and 12.

Spec: rooms v10 "Redactions" (the v9 fragment, ``rooms/fragments/v9-redactions.md``) and
rooms v11/v12 "Redactions" (``rooms/fragments/v11-redactions.md``); client-server API
"Redactions".  Room version 10 uses the v9 rules; 11 and 12 use the v11 rules
(``RoomVersion.redaction.v11_rules``).

The algorithm keeps a fixed set of top-level keys and, for a few event types, a few keys of
``content``; everything else is stripped.  ``signatures`` and ``hashes`` are among the kept
top-level keys, ``unsigned`` is not.

``redact`` returns an independent deep copy.  ``redacted_view`` is the cheap variant used on
the hashing and signing hot paths: a new top-level dict and a new ``content`` dict whose
values are *shared* with the input, so it must only be read (encoded), never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..room_versions import RoomVersion

# --- v9 rules (room version 10) ----------------------------------------------------------
# "the server must strip off any keys not in the following list"
_TOP_LEVEL_V9 = frozenset(
    (
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    )
)
# "The content object must also be stripped of all keys, unless it is one of the
# following event types"
_CONTENT_V9: dict[str, frozenset[str]] = {
    "m.room.member": frozenset(("membership", "join_authorised_via_users_server")),
    "m.room.create": frozenset(("creator",)),
    "m.room.join_rules": frozenset(("join_rule", "allow")),
    "m.room.power_levels": frozenset(
        (
            "ban",
            "events",
            "events_default",
            "kick",
            "redact",
            "state_default",
            "users",
            "users_default",
        )
    ),
    "m.room.history_visibility": frozenset(("history_visibility",)),
}

# --- v11 rules (room versions 11 and 12) -------------------------------------------------
# v11 no longer protects the top-level `prev_state`, `origin` and `membership` keys.
_TOP_LEVEL_V11 = _TOP_LEVEL_V9 - {"prev_state", "origin", "membership"}
_CONTENT_V11: dict[str, frozenset[str]] = {
    # plus the `signed` key of `third_party_invite` (handled in _redact_content)
    "m.room.member": frozenset(("membership", "join_authorised_via_users_server")),
    # m.room.create keeps *all* keys (see _ALL_CONTENT)
    "m.room.join_rules": frozenset(("join_rule", "allow")),
    # `invite` is now protected
    "m.room.power_levels": frozenset(
        (
            "ban",
            "events",
            "events_default",
            "invite",
            "kick",
            "redact",
            "state_default",
            "users",
            "users_default",
        )
    ),
    "m.room.history_visibility": frozenset(("history_visibility",)),
    # `redacts` moved into content in v11
    "m.room.redaction": frozenset(("redacts",)),
}
_ALL_CONTENT_V11 = frozenset(("m.room.create",))

_EMPTY: frozenset[str] = frozenset()


def _redact_content(event_type: Any, content: Any, v11: bool) -> dict[str, Any]:
    """The kept part of ``content`` (shallow: values are shared with the input)."""
    if type(content) is not dict and not isinstance(content, Mapping):
        return {}
    if v11:
        if event_type in _ALL_CONTENT_V11:
            return dict(content)
        keep = _CONTENT_V11.get(event_type, _EMPTY) if isinstance(event_type, str) else _EMPTY
    else:
        keep = _CONTENT_V9.get(event_type, _EMPTY) if isinstance(event_type, str) else _EMPTY
    if not keep:
        kept: dict[str, Any] = {}
    else:
        kept = {k: v for k, v in content.items() if k in keep}
    if v11 and event_type == "m.room.member":
        # v11: "Additionally, it allows the `signed` key of the `third_party_invite` key."
        # An object keeps its `signed` key, or nothing, but stays: `{}` without `signed`,
        # as the widely deployed implementation redacts it.  The redacted form is what
        # the reference hash covers, so a different reading would give the same event
        # another event ID on another server.  A non-object value has no `signed` key
        # and is dropped like any other unprotected key.
        tpi = content.get("third_party_invite")
        if isinstance(tpi, Mapping):
            kept["third_party_invite"] = {"signed": tpi["signed"]} if "signed" in tpi else {}
    return kept


def redacted_view(pdu: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """The redacted form of ``pdu`` sharing nested values with it.  Read it, never mutate it."""
    v11 = room_version.redaction.v11_rules
    keep = _TOP_LEVEL_V11 if v11 else _TOP_LEVEL_V9
    out = dict(pdu)
    if not keep.issuperset(pdu):
        for key in pdu.keys() - keep:
            del out[key]
    if "content" in pdu:
        out["content"] = _redact_content(pdu.get("type"), pdu["content"], v11)
    return out


def _copy_json(value: Any) -> Any:
    """Deep copy of a JSON value (dicts and lists; scalars are immutable)."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(v) for v in value]
    return value


def redact(pdu: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Return the redacted form of ``pdu`` as a new, independent dict.

    Per the spec the result keeps ``signatures`` and ``hashes`` (so a redacted event can still
    be verified) and drops ``unsigned``; a missing ``content`` stays missing.
    """
    copied: dict[str, Any] = _copy_json(redacted_view(pdu, room_version))
    return copied
