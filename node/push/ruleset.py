"""A user's push rules: the stored document, validation of what clients send, and the
ruleset clients see (client-server API "Push Rules: API",
https://spec.matrix.org/v1.16/client-server-api/#push-rules-api).  Pure: no I/O.

The stored document holds only what the user changed::

    {"rules": {kind: [rule, ...]},                  # the user's own rules, most important first
     "defaults": {rule_id: {"enabled": bool, "actions": [...]}}}   # changed default rules

The ruleset a client sees puts, for each kind, ``.m.rule.master`` first (override only),
then the user's rules, then the server-default rules with the user's changes applied.

Bounded: at most ``MAX_USER_RULES`` own rules per user, each at most ``MAX_RULE_BYTES`` of
JSON with ``MAX_CONDITIONS`` conditions and ``MAX_ACTIONS`` actions.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from federation.errors import InvalidParam, MatrixError, NotFound

from .defaults import DEFAULT_KIND, DEFAULTS_AFTER, KINDS, MASTER, default_rule

MAX_USER_RULES = 100
MAX_RULE_BYTES = 4096
MAX_CONDITIONS = 20
MAX_ACTIONS = 20
MAX_RULE_ID = 255

CONDITION_KINDS = frozenset(
    {
        "event_match",
        "event_property_is",
        "event_property_contains",
        "contains_display_name",
        "room_member_count",
        "sender_notification_permission",
    }
)
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})
MAX_SAFE_INT = 2**53 - 1


def empty_document() -> dict[str, Any]:
    return {"rules": {}, "defaults": {}}


class MissingParam(MatrixError):
    errcode = "M_MISSING_PARAM"


class TooLarge(MatrixError):
    errcode = "M_TOO_LARGE"
    http_status = 413


# --- validation ---------------------------------------------------------------------------
def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidParam(f"Unknown push rule kind {kind!r} (known: {', '.join(KINDS)})")


def is_scalar(value: object) -> bool:
    """A non-compound canonical JSON value (``event_property_is`` / ``_contains``)."""
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -MAX_SAFE_INT <= value <= MAX_SAFE_INT


def parse_member_count(spec: object) -> tuple[str, int] | None:
    """``room_member_count``'s ``is``: ``[==|<|>|<=|>=]N`` -> (operator, N), else None."""
    if not isinstance(spec, str):
        return None
    op = "=="
    for prefix in ("==", "<=", ">=", "<", ">"):
        if spec.startswith(prefix):
            op, spec = prefix, spec[len(prefix) :]
            break
    if not spec.isascii() or not spec.isdigit() or len(spec) > 16:
        return None
    return op, int(spec)


def check_actions(actions: object) -> list:
    if not isinstance(actions, list):
        raise InvalidParam("'actions' must be a list")
    if len(actions) > MAX_ACTIONS:
        raise InvalidParam(f"At most {MAX_ACTIONS} actions")
    for action in actions:
        if isinstance(action, str):
            if action != "notify" and action not in HISTORICAL_ACTIONS:
                raise InvalidParam(f"Unknown action {action!r}")
        elif isinstance(action, dict):
            tweak = action.get("set_tweak")
            if not isinstance(tweak, str) or not tweak or len(tweak) > 255:
                raise InvalidParam("An object action must have a 'set_tweak' string")
        else:
            raise InvalidParam("An action must be a string or an object")
    return actions


def check_condition(cond: object) -> None:
    if not isinstance(cond, dict) or not isinstance(cond.get("kind"), str):
        raise InvalidParam("A condition must be an object with a 'kind' string")
    kind = cond["kind"]
    if kind not in CONDITION_KINDS:
        return  # stored as given; it never matches (spec: unrecognised conditions)
    if kind in ("event_match", "event_property_is", "event_property_contains"):
        if not isinstance(cond.get("key"), str) or not cond["key"]:
            raise InvalidParam(f"{kind} needs a 'key' string")
    if kind == "event_match" and not isinstance(cond.get("pattern"), str):
        raise InvalidParam("event_match needs a 'pattern' string")
    if kind in ("event_property_is", "event_property_contains"):
        if "value" not in cond or not is_scalar(cond["value"]):
            raise InvalidParam(f"{kind} needs a 'value' string, integer, boolean or null")
    if kind == "room_member_count" and parse_member_count(cond.get("is")) is None:
        raise InvalidParam("room_member_count needs 'is' like '2', '<10' or '>=3'")
    if kind == "sender_notification_permission" and not isinstance(cond.get("key"), str):
        raise InvalidParam("sender_notification_permission needs a 'key' string")


def check_rule_id(kind: str, rule_id: str) -> None:
    if rule_id.startswith("."):
        raise InvalidParam("Rule IDs starting with '.' are reserved for server-default rules")
    if not rule_id or len(rule_id) > MAX_RULE_ID or "/" in rule_id or "\\" in rule_id:
        raise InvalidParam("Invalid rule ID (1-255 characters, no '/' or '\\')")
    if kind == "room" and not rule_id.startswith("!"):
        raise InvalidParam("The rule ID of a room rule is the room ID")
    if kind == "sender" and not rule_id.startswith("@"):
        raise InvalidParam("The rule ID of a sender rule is the user ID")


def new_user_rule(kind: str, rule_id: str, body: object) -> dict[str, Any]:
    """The stored form of a rule a client PUTs, after checking it (400 on any mistake)."""
    check_rule_id(kind, rule_id)
    if not isinstance(body, dict):
        raise InvalidParam("The body must be a JSON object")
    if "actions" not in body:
        raise MissingParam("Missing 'actions'")
    rule: dict[str, Any] = {"rule_id": rule_id, "actions": check_actions(body["actions"])}
    if kind in ("override", "underride"):
        conditions = body.get("conditions", [])
        if not isinstance(conditions, list):
            raise InvalidParam("'conditions' must be a list")
        if len(conditions) > MAX_CONDITIONS:
            raise InvalidParam(f"At most {MAX_CONDITIONS} conditions")
        for cond in conditions:
            check_condition(cond)
        rule["conditions"] = conditions
    elif kind == "content":
        if "pattern" not in body:
            raise MissingParam("Content rules need a 'pattern'")
        if not isinstance(body["pattern"], str) or not body["pattern"]:
            raise InvalidParam("'pattern' must be a non-empty string")
        rule["pattern"] = body["pattern"]
    if len(orjson.dumps(rule)) > MAX_RULE_BYTES:
        raise TooLarge(f"A push rule is at most {MAX_RULE_BYTES} bytes of JSON")
    rule["enabled"] = True
    return rule


# --- the ruleset clients see ---------------------------------------------------------------
def _client_user_rule(kind: str, rule: dict[str, Any]) -> dict[str, Any]:
    out = {
        "rule_id": rule["rule_id"],
        "default": False,
        "enabled": bool(rule.get("enabled", True)),
        "actions": copy.deepcopy(rule["actions"]),
    }
    if kind in ("override", "underride"):
        out["conditions"] = copy.deepcopy(rule.get("conditions", []))
    elif kind == "content":
        out["pattern"] = rule["pattern"]
    return out


def _client_default_rule(rule_id: str, user_id: str, changes: dict[str, Any]) -> dict:
    out = default_rule(rule_id, user_id)
    change = changes.get(rule_id)
    if change:
        if "enabled" in change:
            out["enabled"] = bool(change["enabled"])
        if "actions" in change:
            out["actions"] = copy.deepcopy(change["actions"])
    return out


def client_ruleset(doc: dict[str, Any], user_id: str) -> dict[str, list[dict[str, Any]]]:
    """``{"override": [...], "content": [...], ...}`` in priority order."""
    changes = doc.get("defaults", {})
    own = doc.get("rules", {})
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        rules: list[dict[str, Any]] = []
        if kind == "override":
            rules.append(_client_default_rule(MASTER["rule_id"], user_id, changes))
        rules.extend(_client_user_rule(kind, r) for r in own.get(kind, ()))
        rules.extend(
            _client_default_rule(r["rule_id"], user_id, changes) for r in DEFAULTS_AFTER[kind]
        )
        out[kind] = rules
    return out


def find_rule(doc: dict[str, Any], user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
    """One rule as the client sees it; 404 ``M_NOT_FOUND`` when there is none."""
    check_kind(kind)
    if DEFAULT_KIND.get(rule_id) == kind:
        return _client_default_rule(rule_id, user_id, doc.get("defaults", {}))
    for rule in doc.get("rules", {}).get(kind, ()):
        if rule["rule_id"] == rule_id:
            return _client_user_rule(kind, rule)
    raise NotFound("The push rule was not found.")


# --- changes (each returns a new document) ------------------------------------------------
def put_rule(
    doc: dict[str, Any],
    kind: str,
    rule_id: str,
    body: object,
    before: str | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    check_kind(kind)
    if rule_id.startswith(".") or DEFAULT_KIND.get(rule_id):
        raise InvalidParam("Server-default rules cannot be created or replaced")
    rule = new_user_rule(kind, rule_id, body)
    doc = copy.deepcopy(doc)
    rules: list[dict[str, Any]] = doc.setdefault("rules", {}).setdefault(kind, [])
    index = next((i for i, r in enumerate(rules) if r["rule_id"] == rule_id), None)
    for anchor in (before, after):
        if anchor is not None and anchor.startswith("."):
            raise InvalidParam("Rules cannot be placed relative to a server-default rule")
    if index is not None:
        rule["enabled"] = rules[index].get("enabled", True)
        if before is None and after is None:
            rules[index] = rule
            return doc
        del rules[index]
    elif sum(len(v) for v in doc["rules"].values()) >= MAX_USER_RULES:
        raise MatrixError(
            f"At most {MAX_USER_RULES} push rules per user", errcode="M_RESOURCE_LIMIT_EXCEEDED"
        )
    anchor = before if before is not None else after
    if anchor is None:
        rules.insert(0, rule)
        return doc
    pos = next((i for i, r in enumerate(rules) if r["rule_id"] == anchor), None)
    if pos is None:
        raise NotFound(f"No rule {anchor!r} to place this rule next to")
    rules.insert(pos if before is not None else pos + 1, rule)
    return doc


def delete_rule(doc: dict[str, Any], kind: str, rule_id: str) -> dict[str, Any]:
    check_kind(kind)
    if DEFAULT_KIND.get(rule_id) == kind:
        raise InvalidParam("Server-default rules cannot be deleted")
    doc = copy.deepcopy(doc)
    rules = doc.get("rules", {}).get(kind, [])
    kept = [r for r in rules if r["rule_id"] != rule_id]
    if len(kept) == len(rules):
        raise NotFound("The push rule was not found.")
    doc["rules"][kind] = kept
    return doc


def _change(doc: dict[str, Any], kind: str, rule_id: str, field: str, value: Any) -> dict:
    check_kind(kind)
    doc = copy.deepcopy(doc)
    if DEFAULT_KIND.get(rule_id) == kind:
        doc.setdefault("defaults", {}).setdefault(rule_id, {})[field] = value
        return doc
    for rule in doc.get("rules", {}).get(kind, ()):
        if rule["rule_id"] == rule_id:
            rule[field] = value
            if len(orjson.dumps(rule)) > MAX_RULE_BYTES:
                raise TooLarge(f"A push rule is at most {MAX_RULE_BYTES} bytes of JSON")
            return doc
    raise NotFound("The push rule was not found.")


def set_enabled(doc: dict[str, Any], kind: str, rule_id: str, body: object) -> dict:
    if not isinstance(body, dict) or "enabled" not in body:
        raise MissingParam("Missing 'enabled'")
    if not isinstance(body["enabled"], bool):
        raise InvalidParam("'enabled' must be true or false")
    return _change(doc, kind, rule_id, "enabled", body["enabled"])


def set_actions(doc: dict[str, Any], kind: str, rule_id: str, body: object) -> dict:
    if not isinstance(body, dict) or "actions" not in body:
        raise MissingParam("Missing 'actions'")
    actions = check_actions(body["actions"])
    if len(orjson.dumps(actions)) > MAX_RULE_BYTES:
        raise TooLarge(f"Actions are at most {MAX_RULE_BYTES} bytes of JSON")
    return _change(doc, kind, rule_id, "actions", actions)
