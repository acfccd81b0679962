"""Push rule evaluation (client-server API "Push Rules" > "Conditions" and "Actions",
https://spec.matrix.org/v1.16/client-server-api/#push-rules).  Pure: no I/O, no clock.

A user's ruleset is *compiled* once (``compile_ruleset``) into a flat list of rules in
priority order (override, content, room, sender, underride), each a tuple of condition
objects plus its actions already split into ``notify`` / ``highlight`` / ``tweaks``.  The
push area caches the compiled list per user and drops it when the user changes a rule.

Conditions are compiled once per distinct condition JSON (shared between users: the
defaults differ only where they name the user) and, except ``contains_display_name``, do
not depend on who is evaluating, so within one event each is decided once
(``EventContext.memo``) however many members the room has.

Matching follows the spec: ``event_match`` is a case-insensitive glob on the whole string
value (``content.body``: any substring between word boundaries, ``body_match.BodyGlob``);
absent or non-string values never match.  ``event_property_is`` / ``_contains`` compare
non-compound values exactly (``true`` is not ``1``).  Unknown condition kinds never match.
The historical actions ``dont_notify`` and ``coalesce`` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping, Protocol

import orjson

from federation.globs import Glob

from .body_match import BodyGlob
from .defaults import LEGACY_MENTION_RULES
from .paths import MISSING, lookup, parse_path
from .ruleset import HISTORICAL_ACTIONS, is_scalar, parse_member_count

KIND_ORDER = ("override", "content", "room", "sender", "underride")


class RoomFacts(Protocol):
    """What conditions need to know about the room at the event."""

    member_count: int

    def display_name(self, user_id: str) -> str | None: ...

    def sender_may_notify(self, key: str) -> bool: ...


class EventContext:
    """One event being evaluated for every member: property look-ups and condition
    results are computed once."""

    __slots__ = ("event", "room", "memo", "has_mentions", "_values", "_lowered")

    def __init__(self, event: Mapping[str, Any], room: RoomFacts) -> None:
        self.event = event
        self.room = room
        self.memo: dict[int, bool] = {}
        content = event.get("content")
        # The legacy body-mention rules do not apply to events with m.mentions.
        self.has_mentions = isinstance(content, Mapping) and "m.mentions" in content
        self._values: dict[tuple[str, ...], object] = {}
        self._lowered: dict[tuple[str, ...], str | None] = {}

    def value(self, path: tuple[str, ...]) -> object:
        try:
            return self._values[path]
        except KeyError:
            v = self._values[path] = lookup(self.event, path)
            return v

    def lowered(self, path: tuple[str, ...]) -> str | None:
        try:
            return self._lowered[path]
        except KeyError:
            v = self.value(path)
            out = v.lower() if isinstance(v, str) else None
            self._lowered[path] = out
            return out


# --- conditions ---------------------------------------------------------------------------
class Condition:
    __slots__ = ()
    per_user = False  # True: the result depends on the user (never memoised)

    def test(self, ctx: EventContext, user_id: str) -> bool:
        raise NotImplementedError


class _Never(Condition):
    __slots__ = ()

    def test(self, ctx: EventContext, user_id: str) -> bool:
        return False


class _EventMatch(Condition):
    __slots__ = ("path", "glob", "body")

    def __init__(self, key: str, pattern: str) -> None:
        self.path = parse_path(key)
        self.body = self.path == ("content", "body")
        self.glob: Glob | BodyGlob = (
            BodyGlob(pattern.lower()) if self.body else Glob(pattern.lower(), "?")
        )

    def test(self, ctx: EventContext, user_id: str) -> bool:
        text = ctx.lowered(self.path)
        if text is None:
            return False
        if self.body:
            return self.glob.search(text)  # type: ignore[union-attr]  # BodyGlob when body
        return self.glob.matches(text)  # type: ignore[union-attr]  # Glob otherwise


class _Equals(Condition):
    """A room or sender rule: the property equals the rule ID exactly."""

    __slots__ = ("path", "value")

    def __init__(self, key: str, value: str) -> None:
        self.path = (key,)
        self.value = value

    def test(self, ctx: EventContext, user_id: str) -> bool:
        return ctx.value(self.path) == self.value


def _same(a: object, b: object) -> bool:
    """Exact equality of non-compound JSON values (``True`` is not ``1``)."""
    return type(a) is type(b) and a == b


class _PropertyIs(Condition):
    __slots__ = ("path", "value")

    def __init__(self, key: str, value: object) -> None:
        self.path = parse_path(key)
        self.value = value

    def test(self, ctx: EventContext, user_id: str) -> bool:
        v = ctx.value(self.path)
        return v is not MISSING and is_scalar(v) and _same(v, self.value)


class _PropertyContains(Condition):
    __slots__ = ("path", "value")

    def __init__(self, key: str, value: object) -> None:
        self.path = parse_path(key)
        self.value = value

    def test(self, ctx: EventContext, user_id: str) -> bool:
        v = ctx.value(self.path)
        if not isinstance(v, list):
            return False
        want = self.value
        return any(_same(item, want) for item in v)


class _DisplayName(Condition):
    __slots__ = ()
    per_user = True

    def test(self, ctx: EventContext, user_id: str) -> bool:
        name = ctx.room.display_name(user_id)
        body = ctx.lowered(("content", "body"))
        if not name or body is None:
            return False
        return _literal(name.lower()).search(body)


@lru_cache(maxsize=4096)
def _literal(text: str) -> BodyGlob:
    return BodyGlob(text, literal=True)


_OPS: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


class _MemberCount(Condition):
    __slots__ = ("op", "n")

    def __init__(self, op: str, n: int) -> None:
        self.op = _OPS[op]
        self.n = n

    def test(self, ctx: EventContext, user_id: str) -> bool:
        return self.op(ctx.room.member_count, self.n)


class _SenderPermission(Condition):
    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def test(self, ctx: EventContext, user_id: str) -> bool:
        return ctx.room.sender_may_notify(self.key)


def _build_condition(cond: Mapping[str, Any]) -> Condition:
    kind = cond.get("kind")
    key = cond.get("key")
    if kind == "event_match":
        pattern = cond.get("pattern")
        if isinstance(key, str) and isinstance(pattern, str):
            return _EventMatch(key, pattern)
    elif kind == "event_property_is":
        if isinstance(key, str) and "value" in cond and is_scalar(cond["value"]):
            return _PropertyIs(key, cond["value"])
    elif kind == "event_property_contains":
        if isinstance(key, str) and "value" in cond and is_scalar(cond["value"]):
            return _PropertyContains(key, cond["value"])
    elif kind == "contains_display_name":
        return _DisplayName()
    elif kind == "room_member_count":
        parsed = parse_member_count(cond.get("is"))
        if parsed is not None:
            return _MemberCount(*parsed)
    elif kind == "sender_notification_permission":
        if isinstance(key, str):
            return _SenderPermission(key)
    return _Never()


@lru_cache(maxsize=20_000)
def _condition_from_json(text: bytes) -> Condition:
    return _build_condition(orjson.loads(text))


def compile_condition(cond: object) -> Condition:
    if not isinstance(cond, dict):
        return _Never()
    return _condition_from_json(orjson.dumps(cond, option=orjson.OPT_SORT_KEYS))


# --- actions ------------------------------------------------------------------------------
def split_actions(actions: list) -> tuple[list, bool, bool, dict[str, Any]]:
    """(actions without the historical ones, notify, highlight, tweaks)."""
    kept: list = []
    notify = False
    tweaks: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, str) and action in HISTORICAL_ACTIONS:
            continue
        kept.append(action)
        if action == "notify":
            notify = True
        elif isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            tweaks[action["set_tweak"]] = action.get(
                "value", True if action["set_tweak"] == "highlight" else None
            )
    highlight = tweaks.get("highlight") is True
    return kept, notify, highlight, tweaks


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: str
    kind: str
    conditions: tuple[Condition, ...]
    actions: list = field(hash=False, compare=False)
    notify: bool = False
    highlight: bool = False
    tweaks: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    legacy_mention: bool = False  # skipped for events with m.mentions (defaults.py)


def _conditions_for(kind: str, rule: Mapping[str, Any]) -> tuple[Condition, ...]:
    if kind in ("override", "underride"):
        conds = rule.get("conditions", [])
        return tuple(compile_condition(c) for c in conds) if isinstance(conds, list) else ()
    if kind == "content":
        pattern = rule.get("pattern")
        return (_EventMatch("content.body", pattern),) if isinstance(pattern, str) else (_Never(),)
    if kind == "room":
        return (_Equals("room_id", rule["rule_id"]),)
    return (_Equals("sender", rule["rule_id"]),)


def compile_ruleset(ruleset: Mapping[str, list[dict[str, Any]]]) -> tuple[CompiledRule, ...]:
    """The enabled rules of a client-format ruleset, in the order they are tried."""
    out = []
    for kind in KIND_ORDER:
        for rule in ruleset.get(kind, ()):
            if not rule.get("enabled", True):
                continue
            actions, notify, highlight, tweaks = split_actions(list(rule.get("actions", [])))
            out.append(
                CompiledRule(
                    rule["rule_id"],
                    kind,
                    _conditions_for(kind, rule),
                    actions,
                    notify,
                    highlight,
                    tweaks,
                    rule.get("default") is True and rule["rule_id"] in LEGACY_MENTION_RULES,
                )
            )
    return tuple(out)


def evaluate(
    rules: tuple[CompiledRule, ...], ctx: EventContext, user_id: str
) -> CompiledRule | None:
    """The first rule whose conditions all hold (None: no rule matched: no notification)."""
    memo = ctx.memo
    for rule in rules:
        if rule.legacy_mention and ctx.has_mentions:
            continue
        for cond in rule.conditions:
            if cond.per_user:
                if not cond.test(ctx, user_id):
                    break
                continue
            key = id(cond)
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = cond.test(ctx, user_id)
            if not hit:
                break
        else:
            return rule
    return None
