"""Push rule evaluation against the spec's examples and every condition kind
(client-server API "Push Rules", https://spec.matrix.org/v1.16/client-server-api/#push-rules)."""

from __future__ import annotations

import pytest

from node.push.body_match import BodyGlob
from node.push.defaults import DEFAULT_KIND
from node.push.evaluator import EventContext, compile_condition, compile_ruleset, evaluate
from node.push.paths import MISSING, lookup, parse_path
from node.push.ruleset import client_ruleset, empty_document

ME = "@me:school.test"


class Room:
    def __init__(self, members=5, names=None, may_notify=True):
        self.member_count = members
        self.names = names or {}
        self.may = may_notify

    def display_name(self, user_id):
        return self.names.get(user_id)

    def sender_may_notify(self, key):
        return self.may


def holds(cond, event, room=None, user=ME):
    return compile_condition(cond).test(EventContext(event, room or Room()), user)


def msg(body="hi", **content):
    return {
        "type": "m.room.message",
        "sender": "@other:school.test",
        "room_id": "!r:school.test",
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def winner(event, room=None, doc=None, user=ME):
    rules = compile_ruleset(client_ruleset(doc or empty_document(), user))
    rule = evaluate(rules, EventContext(event, room or Room()), user)
    return None if rule is None else (rule.rule_id, rule.notify, rule.highlight)


# --- paths --------------------------------------------------------------------------------
def test_dotted_paths_with_escapes():
    assert parse_path("content.m\\.relates_to.rel_type") == ("content", "m.relates_to", "rel_type")
    assert parse_path("content.m\\\\foo") == ("content", "m\\foo")
    assert parse_path("content.a\\xb") == ("content", "a\\xb")  # other escapes kept
    assert (
        lookup({"content": {"m.relates_to": {"x": 1}}}, parse_path("content.m\\.relates_to.x")) == 1
    )
    assert lookup({"content": "s"}, ("content", "body")) is MISSING


# --- event_match --------------------------------------------------------------------------
def test_event_match_spec_topic_example():
    cond = {"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}
    topic = {"type": "m.room.topic", "state_key": "", "content": {"topic": "Lunch plans"}}
    assert holds(cond, topic)
    assert holds(cond, {**topic, "content": {"topic": "LUNCH"}})
    assert not holds(cond, {**topic, "content": {"topic": " lunch"}})
    assert not holds(cond, {**topic, "content": {"topic": "lunc"}})
    assert not holds(cond, {**topic, "content": {"topic": None}})
    # Absent or non-string: no match even for "*".
    assert not holds({"kind": "event_match", "key": "content.nope", "pattern": "*"}, topic)


def test_event_match_body_word_boundaries_spec_example():
    cond = {"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}
    assert holds(cond, msg("An example event."))
    assert holds(cond, msg("exple"))
    assert holds(cond, msg("An exciting triple-whammy"))
    assert not holds(cond, msg("examples"))  # ends inside a word
    assert not holds(cond, msg("anexample"))  # starts inside a word
    cake = {"kind": "event_match", "key": "content.body", "pattern": "cake"}
    assert holds(cake, msg("I want CAKE!"))
    assert not holds(cake, msg("cupcakes"))
    assert holds({"kind": "event_match", "key": "content.body", "pattern": "c?ke"}, msg("a coke"))


def test_body_glob_needs_no_backtracking():
    # A backtracking matcher takes minutes on this; the leftmost placement answers at once.
    assert not BodyGlob("*a*a*a*a*a*a*a*a*a*a*b").search("a" * 20_000)
    assert BodyGlob("*a*a*a*a*a*a*a*a*a*a*b").search("a" * 20_000 + "b")
    assert BodyGlob("a*b?d").search("x axxbcd y")
    assert not BodyGlob("a*b?d").search("x axxbcdy")


# --- exact value conditions -----------------------------------------------------------------
def test_event_property_is_spec_example():
    create = {"type": "m.room.create", "state_key": "", "content": {"m.federate": True}}
    cond = {"kind": "event_property_is", "key": "content.m\\.federate", "value": True}
    assert holds(cond, create)
    assert not holds(cond, {**create, "content": {"m.federate": "true"}})
    assert not holds(cond, {**create, "content": {"m.federate": 1}})
    assert holds(
        {"kind": "event_property_is", "key": "content.x", "value": None}, {"content": {"x": None}}
    )
    assert not holds(
        {"kind": "event_property_is", "key": "content.x", "value": None}, {"content": {}}
    )


def test_event_property_contains_spec_example():
    ev = {"content": {"alt_aliases": ["#somewhere:example.org", "#myroom:example.com"]}}
    cond = {
        "kind": "event_property_contains",
        "key": "content.alt_aliases",
        "value": "#myroom:example.com",
    }
    assert holds(cond, ev)
    partial = {**cond, "value": ":example.com"}
    assert not holds(partial, ev)
    assert not holds(cond, {"content": {"alt_aliases": "#myroom:example.com"}})  # not an array
    assert not holds({**cond, "value": 1}, {"content": {"alt_aliases": [True]}})


def test_room_member_count_operators():
    ev = msg()
    for spec, members, expected in [
        ("2", 2, True),
        ("==2", 3, False),
        ("<10", 9, True),
        ("<10", 10, False),
        (">3", 4, True),
        (">=4", 4, True),
        ("<=4", 5, False),
    ]:
        cond = {"kind": "room_member_count", "is": spec}
        assert holds(cond, ev, Room(members)) is expected, spec
    assert not holds({"kind": "room_member_count", "is": "~2"}, ev, Room(2))


def test_display_name_and_sender_permission():
    room = Room(names={ME: "Ms. Smith"})
    cond = {"kind": "contains_display_name"}
    assert holds(cond, msg("ask ms. smith please"), room)
    assert not holds(cond, msg("ask ms. smithers"), room)
    assert not holds(cond, msg("hello"), Room())
    perm = {"kind": "sender_notification_permission", "key": "room"}
    assert holds(perm, msg(), Room(may_notify=True))
    assert not holds(perm, msg(), Room(may_notify=False))
    assert not holds({"kind": "org.example.future"}, msg())  # unknown: never matches


# --- the server-default rules ---------------------------------------------------------------
def test_default_rules_in_spec_order():
    rules = client_ruleset(empty_document(), ME)
    assert [r["rule_id"] for r in rules["override"]] == [
        ".m.rule.master",
        ".m.rule.suppress_notices",
        ".m.rule.invite_for_me",
        ".m.rule.member_event",
        ".m.rule.is_user_mention",
        ".m.rule.contains_display_name",
        ".m.rule.is_room_mention",
        ".m.rule.roomnotif",
        ".m.rule.tombstone",
        ".m.rule.reaction",
        ".m.rule.room.server_acl",
        ".m.rule.suppress_edits",
    ]
    assert [r["rule_id"] for r in rules["underride"]] == [
        ".m.rule.call",
        ".m.rule.encrypted_room_one_to_one",
        ".m.rule.room_one_to_one",
        ".m.rule.message",
        ".m.rule.encrypted",
    ]
    assert rules["content"] == [
        {
            "rule_id": ".m.rule.contains_user_name",
            "default": True,
            "enabled": True,
            "pattern": "me",
            "actions": [
                "notify",
                {"set_tweak": "sound", "value": "default"},
                {"set_tweak": "highlight"},
            ],
        }
    ]
    assert rules["room"] == rules["sender"] == []
    assert rules["override"][0]["enabled"] is False
    mention = rules["override"][4]
    assert mention["rule_id"] == ".m.rule.is_user_mention"
    assert mention["conditions"][0]["value"] == ME and mention["default"] is True
    assert set(DEFAULT_KIND) == {r["rule_id"] for k in rules.values() for r in k}


@pytest.mark.parametrize(
    "event,expected",
    [
        (msg(), (".m.rule.message", True, False)),
        (msg(msgtype="m.notice"), (".m.rule.suppress_notices", False, False)),
        (msg(**{"m.mentions": {"user_ids": [ME]}}), (".m.rule.is_user_mention", True, True)),
        (msg(**{"m.mentions": {"room": True}}), (".m.rule.is_room_mention", True, True)),
        (
            msg(**{"m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}}),
            (".m.rule.suppress_edits", False, False),
        ),
        ({"type": "m.reaction", "content": {}}, (".m.rule.reaction", False, False)),
        ({"type": "m.call.invite", "content": {}}, (".m.rule.call", True, False)),
        ({"type": "m.room.encrypted", "content": {}}, (".m.rule.encrypted", True, False)),
        (
            {"type": "m.room.tombstone", "state_key": "", "content": {}},
            (".m.rule.tombstone", True, True),
        ),
        (
            {"type": "m.room.member", "state_key": ME, "content": {"membership": "invite"}},
            (".m.rule.invite_for_me", True, False),
        ),
        (
            {"type": "m.room.member", "state_key": "@x:y", "content": {"membership": "join"}},
            (".m.rule.member_event", False, False),
        ),
        ({"type": "m.room.topic", "state_key": "", "content": {"topic": "x"}}, None),
    ],
)
def test_default_rules_decide(event, expected):
    assert winner(event) == expected


def test_one_to_one_rules_and_room_mention_permission():
    assert winner(msg(), Room(2)) == (".m.rule.room_one_to_one", True, False)
    enc = {"type": "m.room.encrypted", "content": {}}
    assert winner(enc, Room(2)) == (".m.rule.encrypted_room_one_to_one", True, False)
    at_room = msg(**{"m.mentions": {"room": True}})
    assert winner(at_room, Room(may_notify=False)) == (".m.rule.message", True, False)


def test_master_rule_and_user_rules_take_priority():
    doc = {"rules": {}, "defaults": {".m.rule.master": {"enabled": True}}}
    assert winner(msg(**{"m.mentions": {"user_ids": [ME]}}), doc=doc) == (
        ".m.rule.master",
        False,
        False,
    )
    doc = {
        "rules": {
            "room": [{"rule_id": "!r:school.test", "actions": [], "enabled": True}],
            "content": [
                {
                    "rule_id": "cake",
                    "pattern": "cake",
                    "actions": ["notify", {"set_tweak": "highlight"}],
                    "enabled": True,
                }
            ],
        },
        "defaults": {".m.rule.message": {"enabled": False}},
    }
    assert winner(msg("cake time"), doc=doc) == ("cake", True, True)
    assert winner(msg("hello"), doc=doc) == ("!r:school.test", False, False)
    other_room = {**msg("hello"), "room_id": "!other:school.test"}
    assert winner(other_room, doc=doc) is None  # .m.rule.message disabled


def test_historical_actions_are_ignored():
    doc = {
        "rules": {
            "sender": [
                {
                    "rule_id": "@other:school.test",
                    "actions": ["dont_notify", "coalesce"],
                    "enabled": True,
                }
            ]
        },
        "defaults": {},
    }
    rule_id, notify, _ = winner(msg(), doc=doc)
    assert rule_id == "@other:school.test" and notify is False


def test_legacy_body_mentions_only_without_m_mentions():
    room = Room(names={ME: "Ms Smith"})
    assert winner(msg("hi me, see this"), room) == (".m.rule.contains_user_name", True, True)
    assert winner(msg("ask Ms Smith"), room) == (".m.rule.contains_display_name", True, True)
    assert winner(msg("@room lunch!"), room) == (".m.rule.roomnotif", True, True)
    # An event with m.mentions is judged by it alone.
    for body in ("hi me", "ask Ms Smith", "@room lunch!"):
        assert winner(msg(body, **{"m.mentions": {}}), room) == (".m.rule.message", True, False)
    assert winner(msg("@room", **{"m.mentions": {"room": True}}), room) == (
        ".m.rule.is_room_mention",
        True,
        True,
    )
