"""Notification counts in ``/sync`` and ``GET /notifications`` from the push rules
evaluated at persist time, as clients see them (client-server API "Receiving
notifications", "Marking notifications as read", "Listing Notifications")."""

from __future__ import annotations

import pytest
from support.deferreds import result_of

from push_support import ALICE, BOB, CAROL, PushNode, counts

NOTIFS = "/_matrix/client/v3/notifications"
THREADED = {"room": {"timeline": {"unread_thread_notifications": True}}}


@pytest.fixture
def node():
    return PushNode()


def zero():
    return {"notification_count": 0, "highlight_count": 0}


def c(n, h=0):
    return {"notification_count": n, "highlight_count": h}


def test_messages_and_mentions_count_for_members_not_the_sender(node):
    room = node.room(members=[BOB, CAROL])
    node.send(ALICE, room, "one")
    node.send(ALICE, room, "two", **{"m.mentions": {"user_ids": [BOB]}})
    node.send(ALICE, room, "bot", msgtype="m.notice")
    assert counts(node.do_sync(BOB), room) == c(2, 1)
    assert counts(node.do_sync(CAROL), room) == c(2, 0)
    assert counts(node.do_sync(ALICE), room) == zero()


def test_count_arrives_with_the_event_in_an_incremental_sync(node):
    room = node.room(members=[BOB])
    since = node.do_sync(BOB)["next_batch"]
    node.send(ALICE, room, "hello")
    out = node.do_sync(BOB, since)
    entry = out["rooms"]["join"][room]
    assert [e["content"]["body"] for e in entry["timeline"]["events"]] == ["hello"]
    assert entry["unread_notifications"] == c(1)


def test_receipts_and_own_events_mark_read(node):
    room = node.room(members=[BOB])
    e1 = node.send(ALICE, room, "one")
    node.send(ALICE, room, "two", **{"m.mentions": {"user_ids": [BOB]}})
    since = node.do_sync(BOB)["next_batch"]
    node.receipt(BOB, room, e1)
    out = node.do_sync(BOB, since)
    assert counts(out, room) == c(1, 1)
    # A private receipt further on clears the rest; the room is reported for the change.
    since = out["next_batch"]
    node.receipt(BOB, room, node.send(ALICE, room, "three"), receipt_type="m.read.private")
    assert counts(node.do_sync(BOB, since), room) == zero()
    node.send(ALICE, room, "four")
    assert counts(node.do_sync(BOB), room) == c(1)
    node.send(BOB, room, "my reply")  # sending an event reads up to it
    assert counts(node.do_sync(BOB), room) == zero()


def test_threads_are_counted_apart_when_the_filter_asks(node):
    room = node.room(members=[BOB])
    root = node.send(ALICE, room, "root")
    thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    node.send(ALICE, room, "in thread", **thread)
    node.send(ALICE, room, "in thread, @bob", **thread, **{"m.mentions": {"user_ids": [BOB]}})
    assert counts(node.do_sync(BOB), room) == c(3, 1)  # all threads without the filter
    entry = node.do_sync(BOB, flt=THREADED)["rooms"]["join"][room]
    assert entry["unread_notifications"] == c(1)
    assert entry["unread_thread_notifications"] == {root: c(2, 1)}
    # A receipt in the thread clears the thread only.
    node.receipt(BOB, room, root, thread_id=root)  # (before the thread's events: no change)
    last = node.send(ALICE, room, "more", **thread)
    node.receipt(BOB, room, last, thread_id=root)
    entry = node.do_sync(BOB, flt=THREADED)["rooms"]["join"][room]
    assert entry["unread_notifications"] == c(1)
    assert "unread_thread_notifications" not in entry
    node.receipt(BOB, room, root, thread_id="main")
    assert counts(node.do_sync(BOB, flt=THREADED), room) == zero()


def test_a_user_rule_changes_the_counts(node):
    room = node.room(members=[BOB, CAROL])  # three members: not a one-to-one room
    rules = "/_matrix/client/v3/pushrules/global"
    path = rules + "/underride/.m.rule.message/enabled"
    assert node.call("PUT", path, user=BOB, body={"enabled": False})[0] == 200
    node.send(ALICE, room, "quiet")
    assert counts(node.do_sync(BOB), room) == zero()
    assert counts(node.do_sync(CAROL), room) == c(1)
    cake = {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]}
    assert node.call("PUT", rules + "/content/cake", user=BOB, body=cake)[0] == 200
    node.send(ALICE, room, "there is Cake!")
    assert counts(node.do_sync(BOB), room) == c(1, 1)
    # A room rule silences the room for BOB only.
    assert node.call("PUT", f"{rules}/room/{room}", user=BOB, body={"actions": []})[0] == 200
    node.send(ALICE, room, "hello again")  # (content rules come before room rules)
    assert counts(node.do_sync(BOB), room) == c(1, 1)
    assert counts(node.do_sync(CAROL), room) == c(3)
    # In a one-to-one room the default one-to-one rule still notifies.
    dm = node.room(members=[BOB])
    node.send(ALICE, dm, "psst")
    assert counts(node.do_sync(BOB), dm) == c(1)


def test_counts_survive_a_restart(node):
    room = node.room(members=[BOB])
    e1 = node.send(ALICE, room, "one")
    node.send(ALICE, room, "two")
    node.receipt(BOB, room, e1)
    again = PushNode(db=node.db)
    assert counts(again.do_sync(BOB), room) == c(1)


def test_listing_notifications(node):
    room = node.room(members=[BOB])
    ids = [node.send(ALICE, room, f"m{i}") for i in range(5)]
    mention = node.send(ALICE, room, "hey", **{"m.mentions": {"user_ids": [BOB]}})
    node.receipt(BOB, room, ids[1])
    status, body = node.call("GET", NOTIFS, user=BOB, query={"limit": 4})
    assert status == 200
    got = body["notifications"]
    assert [n["event"]["event_id"] for n in got] == [mention, ids[4], ids[3], ids[2]]
    assert all("room_id" not in n["event"] for n in got)
    first = got[0]
    assert first["room_id"] == room and first["read"] is False and isinstance(first["ts"], int)
    assert first["actions"][0] == "notify" and {"set_tweak": "highlight"} in first["actions"]
    status, body = node.call("GET", NOTIFS, user=BOB, query={"from": body["next_token"]})
    older = body["notifications"]
    assert [(n["event"]["event_id"], n["read"]) for n in older[:2]] == [
        (ids[1], True),
        (ids[0], True),
    ]
    # ... and, oldest, BOB's invite into the room (.m.rule.invite_for_me).
    assert [n["event"]["type"] for n in older[2:]] == ["m.room.member"]
    assert "next_token" not in body
    status, body = node.call("GET", NOTIFS, user=BOB, query={"only": "highlight"})
    assert [n["event"]["event_id"] for n in body["notifications"]] == [mention]
    # Nobody else sees them.
    assert node.call("GET", NOTIFS, user=CAROL) == (200, {"notifications": []})
    assert node.call("GET", NOTIFS, user=ALICE) == (200, {"notifications": []})
    status, body = node.call("GET", NOTIFS, user=BOB, query={"from": "abc"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = node.call("GET", NOTIFS, user=BOB, query={"limit": "x"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_an_invite_notifies_the_invitee(node):
    room = node.room()
    node.member(ALICE, room, BOB, "invite")
    status, body = node.call("GET", NOTIFS, user=BOB)
    [note] = body["notifications"]
    assert note["event"]["type"] == "m.room.member" and note["event"]["state_key"] == BOB
    assert note["event"]["content"]["membership"] == "invite"


def test_rows_are_written_shortly_after_the_event(node):
    from sqlalchemy import select

    from node.push.notify import FLUSH_S
    from schema.push import push_notifications as pn

    room = node.room(members=[BOB, CAROL])
    content = {"msgtype": "m.text", "body": "x"}
    event_id = result_of(node.rooms.send_event(ALICE, room, "m.room.message", content))

    def users():
        q = select(pn.c.user_id).where(pn.c.event_id == event_id)
        return sorted(r[0] for r in node.db.run_sync(lambda conn: list(conn.execute(q))))

    # The counts are right at once; the rows follow within FLUSH_S.
    assert result_of(node.push.counts.counts(BOB, room)).notifications == 1
    assert users() == []
    node.reactor.advance(FLUSH_S)
    assert users() == [BOB, CAROL]
    # Shutting down writes what is still waiting.
    second = result_of(node.rooms.send_event(ALICE, room, "m.room.message", content))
    result_of(node.push.stop())
    assert (
        len(
            node.db.run_sync(
                lambda conn: list(conn.execute(select(pn.c.id).where(pn.c.event_id == second)))
            )
        )
        == 2
    )
    # A count loaded from the database before the rows were written still has the event.
    again = PushNode(db=node.db)
    result_of(again.rooms.send_event(ALICE, room, "m.room.message", content))
    assert result_of(again.push.counts.counts(CAROL, room)).notifications == 3


def test_old_notifications_are_pruned(node):
    room = node.room(members=[BOB])
    old = node.send(ALICE, room, "last month")
    node.reactor.advance(31 * 86_400)
    new = node.send(ALICE, room, "today")
    assert result_of(node.push.retention.sweep()) >= 1
    status, body = node.call("GET", NOTIFS, user=BOB)
    ids = [n["event"]["event_id"] for n in body["notifications"]]
    assert new in ids and old not in ids
    assert result_of(node.push.retention.sweep()) == 0


def test_body_mentions_from_clients_without_m_mentions(node):
    room = node.room(members=[BOB, CAROL])
    node.send(ALICE, room, "hey Bob, homework?")  # no m.mentions: the legacy rules apply
    node.send(ALICE, room, "Bob again", **{"m.mentions": {}})  # m.mentions: they do not
    assert counts(node.do_sync(BOB), room) == c(2, 1)
    assert counts(node.do_sync(CAROL), room) == c(2, 0)
