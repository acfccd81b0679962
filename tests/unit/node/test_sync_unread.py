"""Unread notification counts under the server-default push rules (pure logic)."""

from __future__ import annotations

from types import SimpleNamespace

from node.sync.unread import UnreadCache, count_unread, push_actions

ME = "@me:x"


def act(event_type, content=None, sender="@other:x", state_key=None, may_notify_room=True):
    return push_actions(event_type, content or {}, sender, state_key, ME, lambda s: may_notify_room)


def test_messages_and_encrypted_notify():
    assert act("m.room.message", {"msgtype": "m.text", "body": "hi"}) == (True, False)
    assert act("m.room.encrypted", {"algorithm": "m.megolm.v1.aes-sha2"}) == (True, False)
    assert act("m.call.invite", {}) == (True, False)


def test_suppressed():
    assert act("m.room.message", {"msgtype": "m.notice", "body": "bot"}) == (False, False)
    assert act("m.reaction", {}) == (False, False)
    assert act(
        "m.room.message",
        {"body": "* fixed", "m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}},
    ) == (False, False)
    assert act("m.room.topic", {"topic": "x"}, state_key="") == (False, False)
    assert act("m.room.member", {"membership": "join"}, state_key="@other:x") == (False, False)
    assert act("m.room.message", {"body": "mine"}, sender=ME) == (False, False)


def test_invite_for_me_and_mentions():
    assert act("m.room.member", {"membership": "invite"}, state_key=ME) == (True, False)
    assert act("m.room.member", {"membership": "invite"}, state_key="@z:x") == (False, False)
    assert act("m.room.message", {"body": "hey", "m.mentions": {"user_ids": [ME]}}) == (True, True)
    assert act("m.room.message", {"body": "hey", "m.mentions": {"user_ids": ["@z:x"]}}) == (
        True,
        False,
    )
    # A mention wins over the edit suppression (override rules are checked in order).
    assert act(
        "m.room.message",
        {"m.mentions": {"user_ids": [ME]}, "m.relates_to": {"rel_type": "m.replace"}},
    ) == (True, True)
    assert act("m.room.message", {"body": "@room", "m.mentions": {"room": True}}) == (True, True)
    assert act(
        "m.room.message", {"body": "@room", "m.mentions": {"room": True}}, may_notify_room=False
    ) == (True, False)
    assert act("m.room.tombstone", {"body": "moved"}, state_key="") == (True, True)


def ev(sender, body="x", **content):
    return SimpleNamespace(
        type="m.room.message",
        sender=sender,
        state_key=None,
        content={"msgtype": "m.text", "body": body, **content},
    )


def test_count_resets_on_own_event():
    evs = [ev("@a:x"), ev("@a:x", **{"m.mentions": {"user_ids": [ME]}}), ev(ME), ev("@a:x")]
    assert count_unread(evs[:2], ME, lambda s: False) == (2, 1)
    assert count_unread(evs, ME, lambda s: False) == (1, 0)
    assert count_unread([ev("@a:x")], ME, lambda s: False, start=(4, 2)) == (5, 2)


def test_cache_is_keyed_by_read_position():
    cache = UnreadCache(max_entries=2)
    cache.put(ME, "!r", 10, 20, 3, 1)
    assert cache.get(ME, "!r", 10) == (20, 3, 1)
    assert cache.get(ME, "!r", 11) is None
    cache.put(ME, "!s", 0, 5, 1, 0)
    cache.put(ME, "!t", 0, 5, 1, 0)  # bounded: overflow clears
    assert cache.get(ME, "!r", 10) is None
    assert cache.get(ME, "!t", 0) == (5, 1, 0)
