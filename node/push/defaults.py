"""The server-default push rules (client-server API "Predefined Rules",
https://spec.matrix.org/v1.16/client-server-api/#predefined-rules), in the spec's order.

The legacy rules that look for mentions in the body (``.m.rule.contains_display_name``,
``.m.rule.roomnotif``, ``.m.rule.contains_user_name``) are listed as v1.16 lists them
(deprecated since v1.7, when ``m.mentions`` came): clients such as matrix-js-sdk expect
them, and events from clients that send no ``m.mentions`` still need them.  They do not
apply to an event that has ``m.mentions`` (``LEGACY_MENTION_RULES``, skipped by the
evaluator), so an event is never highlighted twice over for one mention.

``.m.rule.master`` is an override rule that always comes before the user's own rules; every
other default rule comes after the user's rules of its kind.
"""

from __future__ import annotations

import copy
from typing import Any

KINDS = ("override", "content", "room", "sender", "underride")

_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}
_USER = "[user]"  # replaced by the user's Matrix ID
_LOCALPART = "[localpart]"  # replaced by the local part of the user's Matrix ID

LEGACY_MENTION_RULES = frozenset(
    {".m.rule.contains_display_name", ".m.rule.roomnotif", ".m.rule.contains_user_name"}
)


def _match(key: str, pattern: str) -> dict:
    return {"kind": "event_match", "key": key, "pattern": pattern}


MASTER: dict[str, Any] = {
    "rule_id": ".m.rule.master",
    "default": True,
    "enabled": False,
    "conditions": [],
    "actions": [],
}

_OVERRIDE: list[dict[str, Any]] = [
    {
        "rule_id": ".m.rule.suppress_notices",
        "conditions": [_match("content.msgtype", "m.notice")],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.invite_for_me",
        "conditions": [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", _USER),
        ],
        "actions": ["notify", _SOUND_DEFAULT],
    },
    {
        "rule_id": ".m.rule.member_event",
        "conditions": [_match("type", "m.room.member")],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.is_user_mention",
        "conditions": [
            {
                "kind": "event_property_contains",
                "key": "content.m\\.mentions.user_ids",
                "value": _USER,
            }
        ],
        "actions": ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.contains_display_name",
        "conditions": [{"kind": "contains_display_name"}],
        "actions": ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.is_room_mention",
        "conditions": [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        "actions": ["notify", _HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.roomnotif",
        "conditions": [
            _match("content.body", "@room"),
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        "actions": ["notify", _HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.tombstone",
        "conditions": [_match("type", "m.room.tombstone"), _match("state_key", "")],
        "actions": ["notify", _HIGHLIGHT],
    },
    {
        "rule_id": ".m.rule.reaction",
        "conditions": [_match("type", "m.reaction")],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.room.server_acl",
        "conditions": [_match("type", "m.room.server_acl"), _match("state_key", "")],
        "actions": [],
    },
    {
        "rule_id": ".m.rule.suppress_edits",
        "conditions": [
            {
                "kind": "event_property_is",
                "key": "content.m\\.relates_to.rel_type",
                "value": "m.replace",
            }
        ],
        "actions": [],
    },
]

_UNDERRIDE: list[dict[str, Any]] = [
    {
        "rule_id": ".m.rule.call",
        "conditions": [_match("type", "m.call.invite")],
        "actions": ["notify", {"set_tweak": "sound", "value": "ring"}],
    },
    {
        "rule_id": ".m.rule.encrypted_room_one_to_one",
        "conditions": [
            {"kind": "room_member_count", "is": "2"},
            _match("type", "m.room.encrypted"),
        ],
        "actions": ["notify", _SOUND_DEFAULT],
    },
    {
        "rule_id": ".m.rule.room_one_to_one",
        "conditions": [
            {"kind": "room_member_count", "is": "2"},
            _match("type", "m.room.message"),
        ],
        "actions": ["notify", _SOUND_DEFAULT],
    },
    {
        "rule_id": ".m.rule.message",
        "conditions": [_match("type", "m.room.message")],
        "actions": ["notify"],
    },
    {
        "rule_id": ".m.rule.encrypted",
        "conditions": [_match("type", "m.room.encrypted")],
        "actions": ["notify"],
    },
]

# kind -> the default rules of that kind after the user's own (master excluded).
DEFAULTS_AFTER: dict[str, list[dict[str, Any]]] = {
    "override": _OVERRIDE,
    "content": [
        {
            "rule_id": ".m.rule.contains_user_name",
            "pattern": _LOCALPART,
            "actions": ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
        }
    ],
    "room": [],
    "sender": [],
    "underride": _UNDERRIDE,
}

# rule ID -> kind, for every server-default rule (the master included).
DEFAULT_KIND: dict[str, str] = {MASTER["rule_id"]: "override"} | {
    r["rule_id"]: kind for kind, rules in DEFAULTS_AFTER.items() for r in rules
}


def _for_user(value: Any, user_id: str) -> Any:
    if value == _USER:
        return user_id
    if value == _LOCALPART:
        return user_id[1:].split(":", 1)[0]
    if isinstance(value, list):
        return [_for_user(v, user_id) for v in value]
    if isinstance(value, dict):
        return {k: _for_user(v, user_id) for k, v in value.items()}
    return value


def default_rule(rule_id: str, user_id: str) -> dict[str, Any]:
    """A fresh copy of one server-default rule as the client sees it (``default: true``,
    ``enabled: true`` unless it is the master rule)."""
    if rule_id == MASTER["rule_id"]:
        return copy.deepcopy(MASTER)
    kind = DEFAULT_KIND[rule_id]
    rule = next(r for r in DEFAULTS_AFTER[kind] if r["rule_id"] == rule_id)
    out = {"rule_id": rule_id, "default": True, "enabled": True}
    if "pattern" in rule:
        out["pattern"] = _for_user(rule["pattern"], user_id)
    else:
        out["conditions"] = _for_user(rule["conditions"], user_id)
    out["actions"] = copy.deepcopy(rule["actions"])
    return out
