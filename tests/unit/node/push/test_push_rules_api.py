"""The push rules endpoints in-process, as a client sees them (client-server API "Push
Rules: API", https://spec.matrix.org/v1.16/client-server-api/#push-rules-api), and the
``m.push_rules`` account data in ``/sync``."""

from __future__ import annotations

import pytest

from node.push.ruleset import MAX_USER_RULES
from push_support import ALICE, BOB, PushNode, account_data_types, push_rules_event

BASE = "/_matrix/client/v3/pushrules"


@pytest.fixture
def node():
    return PushNode()


def ids(ruleset, kind):
    """The user's own rules of ``kind`` (the server-default ones left out)."""
    return [r["rule_id"] for r in ruleset[kind] if not r["default"]]


def test_get_all_rules_has_every_kind_and_the_defaults(node):
    status, body = node.call("GET", BASE + "/")
    assert status == 200
    assert set(body) == {"global"}
    assert set(body["global"]) == {"override", "content", "room", "sender", "underride"}
    assert body["global"]["override"][0]["rule_id"] == ".m.rule.master"
    assert ".m.rule.message" in [r["rule_id"] for r in body["global"]["underride"]]
    assert node.call("GET", BASE + "/global/") == (200, body["global"])
    status, rule = node.call("GET", BASE + "/global/underride/.m.rule.message")
    assert status == 200
    assert rule == {
        "rule_id": ".m.rule.message",
        "default": True,
        "enabled": True,
        "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
        "actions": ["notify"],
    }


def test_create_read_order_and_delete_user_rules(node):
    put = lambda rid, body, **q: node.call(  # noqa: E731 - a short local helper
        "PUT", f"{BASE}/global/content/{rid}", body=body, query=q
    )
    assert put("cake", {"pattern": "cake", "actions": ["notify"]}) == (200, {})
    assert put("tea", {"pattern": "tea", "actions": ["notify"]}) == (200, {})
    # Created without before/after: the most important user rule.
    assert ids(node.call("GET", BASE + "/global/")[1], "content") == ["tea", "cake"]
    assert put("pie", {"pattern": "pie", "actions": []}, after="tea") == (200, {})
    assert put("jam", {"pattern": "jam", "actions": []}, before="tea") == (200, {})
    assert ids(node.call("GET", BASE + "/global/")[1], "content") == ["jam", "tea", "pie", "cake"]
    status, rule = node.call("GET", BASE + "/global/content/pie")
    assert rule == {
        "rule_id": "pie",
        "default": False,
        "enabled": True,
        "pattern": "pie",
        "actions": [],
    }
    assert node.call("DELETE", BASE + "/global/content/pie") == (200, {})
    assert node.call("GET", BASE + "/global/content/pie")[0] == 404
    assert node.call("DELETE", BASE + "/global/content/pie")[1]["errcode"] == "M_NOT_FOUND"
    # Another user sees none of it.
    assert ids(node.call("GET", BASE + "/global/", user=BOB)[1], "content") == []
    assert node.call("GET", BASE + "/global/content/cake", user=BOB)[0] == 404


def test_override_rules_keep_their_conditions(node):
    body = {
        "conditions": [
            {"kind": "event_match", "key": "content.body", "pattern": "beer"},
            {"kind": "room_member_count", "is": "<=10"},
        ],
        "actions": ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}],
    }
    assert node.call("PUT", BASE + "/global/override/beer", body=body) == (200, {})
    status, rule = node.call("GET", BASE + "/global/override/beer")
    assert rule["conditions"] == body["conditions"] and rule["actions"] == body["actions"]
    # User override rules come after the master rule and before the other defaults.
    override = node.call("GET", BASE + "/global/")[1]["override"]
    assert [r["rule_id"] for r in override][:3] == [
        ".m.rule.master",
        "beer",
        ".m.rule.suppress_notices",
    ]


@pytest.mark.parametrize(
    "path,body,query,status,errcode",
    [
        ("/global/nonsense/x", {"actions": []}, {}, 400, "M_INVALID_PARAM"),
        ("/global/content/.mine", {"pattern": "x", "actions": []}, {}, 400, "M_INVALID_PARAM"),
        ("/global/underride/.m.rule.message", {"actions": []}, {}, 400, "M_INVALID_PARAM"),
        ("/global/content/x", {"actions": []}, {}, 400, "M_MISSING_PARAM"),
        ("/global/content/x", {"pattern": 5, "actions": []}, {}, 400, "M_INVALID_PARAM"),
        ("/global/content/x", {"pattern": "x"}, {}, 400, "M_MISSING_PARAM"),
        ("/global/content/x", {"pattern": "x", "actions": ["wiggle"]}, {}, 400, "M_INVALID_PARAM"),
        ("/global/override/x", {"actions": [], "conditions": "no"}, {}, 400, "M_INVALID_PARAM"),
        (
            "/global/override/x",
            {"actions": [], "conditions": [{"kind": "room_member_count", "is": "lots"}]},
            {},
            400,
            "M_INVALID_PARAM",
        ),
        ("/global/room/notaroom", {"actions": []}, {}, 400, "M_INVALID_PARAM"),
        (
            "/global/content/x",
            {"pattern": "x", "actions": []},
            {"before": "nope"},
            404,
            "M_NOT_FOUND",
        ),
        (
            "/global/content/x",
            {"pattern": "x", "actions": []},
            {"after": ".m.rule.master"},
            400,
            "M_INVALID_PARAM",
        ),
        ("/global/content/x", {"pattern": "x" * 5000, "actions": []}, {}, 413, "M_TOO_LARGE"),
    ],
)
def test_bad_rules_are_refused(node, path, body, query, status, errcode):
    got_status, got = node.call("PUT", BASE + path, body=body, query=query)
    assert (got_status, got["errcode"]) == (status, errcode)
    assert ids(node.call("GET", BASE + "/global/")[1], "content") == []


def test_default_rules_cannot_be_deleted_but_can_be_switched(node):
    status, body = node.call("DELETE", BASE + "/global/override/.m.rule.master")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    assert node.call("GET", BASE + "/global/override/.m.rule.master/enabled") == (
        200,
        {"enabled": False},
    )
    path = BASE + "/global/underride/.m.rule.message"
    assert node.call("PUT", path + "/enabled", body={"enabled": False}) == (200, {})
    assert node.call("GET", path + "/enabled") == (200, {"enabled": False})
    assert node.call(
        "PUT", path + "/actions", body={"actions": ["notify", {"set_tweak": "sound", "value": "x"}]}
    ) == (200, {})
    assert node.call("GET", path + "/actions") == (
        200,
        {"actions": ["notify", {"set_tweak": "sound", "value": "x"}]},
    )
    assert (
        node.call("PUT", path + "/enabled", body={"enabled": "no"})[1]["errcode"]
        == "M_INVALID_PARAM"
    )
    assert node.call("PUT", path + "/enabled", body={})[1]["errcode"] == "M_MISSING_PARAM"
    # A default rule under the wrong kind does not exist.
    assert node.call("GET", BASE + "/global/override/.m.rule.message")[0] == 404
    assert node.call("PUT", BASE + "/global/content/nope/enabled", body={"enabled": True})[0] == 404
    # BOB's rule is untouched.
    assert node.call("GET", path + "/enabled", user=BOB) == (200, {"enabled": True})


def test_number_of_user_rules_is_capped(node):
    for i in range(MAX_USER_RULES):
        assert (
            node.call(
                "PUT", f"{BASE}/global/content/r{i}", body={"pattern": f"w{i}", "actions": []}
            )[0]
            == 200
        )
    status, body = node.call(
        "PUT", BASE + "/global/content/one_more", body={"pattern": "x", "actions": []}
    )
    assert status == 400 and body["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED"
    # Replacing an existing rule is still allowed.
    assert (
        node.call("PUT", BASE + "/global/content/r0", body={"pattern": "y", "actions": []})[0]
        == 200
    )


def test_push_rules_in_initial_and_incremental_sync(node):
    out = node.do_sync(ALICE)
    event = push_rules_event(out)
    assert event["content"]["global"]["override"][0]["rule_id"] == ".m.rule.master"
    since = out["next_batch"]
    assert "m.push_rules" not in account_data_types(node.do_sync(ALICE, since))
    path = BASE + "/global/underride/.m.rule.message/enabled"
    assert node.call("PUT", path, body={"enabled": False}) == (200, {})
    out = node.do_sync(ALICE, since)
    rules = push_rules_event(out)["content"]["global"]["underride"]
    assert next(r for r in rules if r["rule_id"] == ".m.rule.message")["enabled"] is False
    # The next initial sync has the changed rules once.
    assert account_data_types(node.do_sync(ALICE)).count("m.push_rules") == 1
    assert "m.push_rules" not in account_data_types(node.do_sync(BOB, since))


def test_rules_survive_a_restart(node):
    node.call("PUT", BASE + "/global/content/cake", body={"pattern": "cake", "actions": ["notify"]})
    again = PushNode(db=node.db)
    assert ids(again.call("GET", BASE + "/global/")[1], "content") == ["cake"]
