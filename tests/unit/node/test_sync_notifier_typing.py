"""The sync notifier (long-poll wake-ups) and typing notifications, on a fake clock."""

from __future__ import annotations

from twisted.internet import defer, task

from node.clock import ReactorClock
from node.notifier import Notifier
from node.stream_tokens import StreamToken
from node.sync.notifier import SyncNotifier, make_notifier
from node.sync.typing import MAX_TIMEOUT_MS, TypingManager


def _results(d: defer.Deferred) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


def make():
    clock = task.Clock()
    return clock, SyncNotifier(ReactorClock(clock))


def test_make_notifier_implements_interface():
    n = make_notifier(type("Ctx", (), {"clock": ReactorClock(task.Clock())})())
    assert isinstance(n, Notifier)


def test_room_event_wakes_waiter_of_that_room_only():
    clock, n = make()
    a = _results(n.wait("@a:x", ["!r1:x"], StreamToken(), 30_000))
    b = _results(n.wait("@b:x", ["!r2:x"], StreamToken(), 30_000))
    assert a == [] and b == []
    n.notify_room_event("!r1:x", 5)
    assert a == [True]
    assert b == []
    assert n.current_token().events == 5
    assert n.waiter_count() == 1
    clock.advance(30)
    assert b == [False]
    assert n.waiter_count() == 0


def test_waiter_returns_at_once_when_position_already_moved():
    _clock, n = make()
    n.notify_room_event("!r1:x", 7)
    # A sync that computed its (empty) answer at s5 while event 7 landed must not sleep.
    assert _results(n.wait("@a:x", ["!r1:x"], StreamToken(events=5), 30_000)) == [True]
    assert _results(n.wait("@a:x", ["!r1:x"], StreamToken(events=7), 0)) == [False]


def test_extra_users_are_woken_and_remembered():
    _clock, n = make()
    waiting = _results(n.wait("@invitee:x", [], StreamToken(events=3), 30_000))
    n.notify_room_event("!r1:x", 4, extra_user_ids=["@invitee:x"])
    assert waiting == [True]
    assert n.user_changed_since("@invitee:x", StreamToken(events=3))
    assert not n.user_changed_since("@invitee:x", StreamToken(events=4))


def test_user_streams_and_room_streams():
    _clock, n = make()
    w1 = _results(n.wait("@a:x", ["!r:x"], StreamToken(), 10_000))
    n.notify_users(["@a:x"], "account_data", 2)
    assert w1 == [True]
    assert n.current_token().account_data == 2
    w2 = _results(n.wait("@a:x", ["!r:x"], StreamToken(account_data=2), 10_000))
    n.notify_room_stream("!r:x", "receipts", 9)
    assert w2 == [True]
    assert n.rooms_changed_since(["!r:x", "!q:x"], StreamToken(account_data=2)) == {"!r:x"}
    assert n.rooms_changed_since(["!r:x"], StreamToken(receipts=9)) == set()


def test_cancelled_waiter_is_dropped():
    clock, n = make()
    d = n.wait("@a:x", ["!r1:x", "!r2:x"], StreamToken(), 30_000)
    out = _results(d)
    assert n.waiter_count() == 1
    d.cancel()
    assert isinstance(out[0].value, defer.CancelledError)
    assert n.waiter_count() == 0
    assert n._room_waiters == {}
    assert clock.getDelayedCalls() == []
    n.notify_room_event("!r1:x", 1)  # nothing left to wake, no error


def test_one_event_wakes_every_waiter_in_room_once():
    _clock, n = make()
    outs = [_results(n.wait(f"@u{i}:x", ["!r:x", "!s:x"], StreamToken(), 30_000)) for i in range(5)]
    n.notify_room_event("!r:x", 1)
    n.notify_room_event("!s:x", 2)
    assert outs == [[True]] * 5
    assert n.waiter_count() == 0


def test_seeded_positions():
    _clock, n = make()
    n.load_room_positions({"!a:x": 10, "!b:x": 3})
    assert n.current_token().events == 10
    assert n.rooms_changed_since(["!a:x", "!b:x"], StreamToken(events=5)) == {"!a:x"}


# --- typing -----------------------------------------------------------------------------
def make_typing():
    clock, n = make()
    return clock, n, TypingManager(ReactorClock(clock), n)


def test_typing_starts_and_times_out():
    clock, n, t = make_typing()
    waiting = _results(n.wait("@b:x", ["!r:x"], StreamToken(), 60_000))
    t.set_typing("!r:x", "@a:x", True, 10_000)
    assert waiting == [True]
    assert t.typing_users("!r:x") == ["@a:x"]
    assert t.typing_event("!r:x") == {"type": "m.typing", "content": {"user_ids": ["@a:x"]}}
    first = t.serial
    clock.advance(9.9)
    assert t.typing_users("!r:x") == ["@a:x"]
    clock.advance(0.2)
    assert t.typing_users("!r:x") == []
    assert t.serial == first + 1
    assert t.changed_rooms(["!r:x", "!q:x"], first) == ["!r:x"]
    assert n.current_token().typing == t.serial


def test_typing_refresh_extends_without_new_serial():
    clock, _n, t = make_typing()
    t.set_typing("!r:x", "@a:x", True, 10_000)
    serial = t.serial
    clock.advance(8)
    t.set_typing("!r:x", "@a:x", True, 10_000)
    assert t.serial == serial
    clock.advance(5)  # the first timeout must not fire any more
    assert t.typing_users("!r:x") == ["@a:x"]
    clock.advance(6)
    assert t.typing_users("!r:x") == []
    assert clock.getDelayedCalls() == []


def test_typing_stop_and_stop_when_not_typing():
    clock, _n, t = make_typing()
    t.set_typing("!r:x", "@a:x", True, 10_000)
    t.set_typing("!r:x", "@b:x", True, 10_000)
    assert t.typing_users("!r:x") == ["@a:x", "@b:x"]
    t.set_typing("!r:x", "@a:x", False)
    assert t.typing_users("!r:x") == ["@b:x"]
    serial = t.serial
    t.set_typing("!r:x", "@a:x", False)  # no change, no new serial
    assert t.serial == serial
    t.user_left("!r:x", "@b:x")
    assert t.typing_users("!r:x") == []
    assert clock.getDelayedCalls() == []


def test_typing_timeout_is_clamped():
    clock, _n, t = make_typing()
    t.set_typing("!r:x", "@a:x", True, 10**12)
    clock.advance(MAX_TIMEOUT_MS / 1000 + 1)
    assert t.typing_users("!r:x") == []
