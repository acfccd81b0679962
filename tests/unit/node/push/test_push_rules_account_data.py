"""``GET /user/{userId}/account_data/m.push_rules`` (client-server API "Client Config",
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridaccount_datatype)
answers the user's current push rules -- the server-default ruleset before any change --
and, like all server-managed account data, cannot be set there."""

from __future__ import annotations

import pytest

from node.sync.api import account_data
from push_support import ALICE, BOB, PushNode

RULES = "/_matrix/client/v3/pushrules"


def path(user):
    return f"/_matrix/client/v3/user/{user}/account_data/m.push_rules"


@pytest.fixture
def node():
    n = PushNode()
    account_data.register(n.router, n.sync)
    return n


def test_the_default_ruleset_is_served_before_any_change(node):
    status, body = node.call("GET", path(ALICE), user=ALICE)
    assert status == 200
    assert body == node.call("GET", RULES + "/", user=ALICE)[1]
    assert body["global"]["override"][0]["rule_id"] == ".m.rule.master"


def test_a_changed_rule_shows_at_once(node):
    rule = {"pattern": "cake", "actions": ["notify"]}
    assert node.call("PUT", RULES + "/global/content/cake", user=ALICE, body=rule) == (200, {})
    content = node.call("GET", path(ALICE), user=ALICE)[1]["global"]["content"]
    assert [r["rule_id"] for r in content if not r["default"]] == ["cake"]
    # Another user's rules are their own, and are not readable by ALICE.
    other = node.call("GET", path(BOB), user=BOB)[1]["global"]["content"]
    assert [r["rule_id"] for r in other if not r["default"]] == []
    status, body = node.call("GET", path(BOB), user=ALICE)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_it_cannot_be_set_through_account_data(node):
    status, body = node.call("PUT", path(ALICE), user=ALICE, body={"global": {}})
    assert (status, body["errcode"]) == (405, "M_BAD_JSON")
    assert node.call("GET", path(ALICE), user=ALICE)[1]["global"]["override"]
