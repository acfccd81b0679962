"""Push evaluation keeps each room's split of local members ("server-default rules" vs "rules
of their own", their names for the body-mention rules) between events and recomputes it on
a membership change or a rule change, so what members see never lags behind
(client-server API "Push Notifications" > "Server behaviour",
https://spec.matrix.org/v1.16/client-server-api/#server-behaviour-14)."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from push_support import ALICE, BOB, CAROL, PushNode, counts
from rooms_support import uid

DAVE = uid("dave")
RULES = "/_matrix/client/v3/pushrules/global"


@pytest.fixture
def node():
    return PushNode()


def c(n, h=0):
    return {"notification_count": n, "highlight_count": h}


def test_a_rule_change_after_messages_applies_to_the_next_message(node):
    room = node.room(members=[BOB, CAROL])
    node.send(ALICE, room, "one")  # the room's split is now cached
    assert node.call("PUT", f"{RULES}/room/{room}", user=BOB, body={"actions": []})[0] == 200
    node.send(ALICE, room, "two")
    assert counts(node.do_sync(BOB), room) == c(1)
    assert counts(node.do_sync(CAROL), room) == c(2)


def test_a_new_display_name_is_found_in_the_next_body(node):
    room = node.room(members=[BOB, CAROL])
    node.send(ALICE, room, "one")
    node.member(CAROL, room, CAROL, "join")  # unchanged name: Carol
    result_of(
        node.rooms.update_membership(
            CAROL, room, CAROL, "join", extra_content={"displayname": "Zebrafish"}
        )
    )
    node.flush()
    node.send(ALICE, room, "where is zebrafish?")  # no m.mentions: the legacy body rules
    # (her own join read "one": an own event counts as a receipt)
    assert counts(node.do_sync(CAROL), room) == c(1, 1)
    assert counts(node.do_sync(BOB), room) == c(2, 0)


def test_joiners_and_leavers_after_messages(node):
    room = node.room(members=[BOB, CAROL])
    node.send(ALICE, room, "before")
    node.member(ALICE, room, DAVE, "invite")
    node.member(DAVE, room, DAVE, "join")
    node.member(CAROL, room, CAROL, "leave")
    node.send(ALICE, room, "after")
    assert counts(node.do_sync(DAVE), room) == c(1)
    assert counts(node.do_sync(BOB), room) == c(2)
    notes = node.call("GET", "/_matrix/client/v3/notifications", user=CAROL)[1]
    bodies = [n["event"]["content"].get("body") for n in notes["notifications"]]
    assert [b for b in bodies if b is not None] == ["before"]


def test_membership_events_notify_only_the_invitee(node):
    room = node.room(members=[BOB, CAROL])
    path = "/_matrix/client/v3/notifications"
    before = {u: node.call("GET", path, user=u)[1] for u in (BOB, CAROL)}
    node.member(ALICE, room, DAVE, "invite")
    listed = node.call("GET", path, user=DAVE)[1]
    assert [n["event"]["type"] for n in listed["notifications"]] == ["m.room.member"]
    assert {u: node.call("GET", path, user=u)[1] for u in (BOB, CAROL)} == before


def test_ordinary_messages_do_not_look_at_every_member(node):
    room = node.room(members=[BOB, CAROL, DAVE])
    node.send(ALICE, room, "warm up")
    rules = node.push.rules
    asked: list[str] = []
    has_own = rules.has_own_rules
    rules.has_own_rules = lambda user_id: asked.append(user_id) or has_own(user_id)
    for i in range(3):
        node.send(ALICE, room, f"message {i}")
    assert asked == []  # the split came from the cache
    assert counts(node.do_sync(DAVE), room) == c(4)
