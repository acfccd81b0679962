"""``EventPersister``: holds (``hold``/``release``, the ``MAX_HOLD_S`` timer), ``flush`` and
``enqueue_extra`` (a write in the same database transaction as the events queued before
it: an inbound federation transaction's stored response commits with its events).

The persister runs on ``InlineDB`` (each ``db.run`` is one SQLite transaction, completed
synchronously) with a ``task.Clock`` behind the clock's ``call_later``, so whether a
Deferred has fired says exactly whether its write was committed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import defer, task

import schema.federation  # noqa: F401 - registers event_state_groups & co.
from federation.events.builder import build_create_event, build_event
from federation.keys import SigningKey
from federation.room_versions import V12
from node.rooms.event_meta import meta
from node.rooms.persister import MAX_HOLD_S, EventPersister
from rooms_support import RecordingNotifier
from schema.events import events

KEY = SigningKey("p1", b"\x05" * 32)
SERVER = "school.test"


class TimerClock:
    def __init__(self) -> None:
        self.reactor = task.Clock()
        self.reactor.advance(1_700_000_000)

    def time_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def call_later(self, seconds, fn, *args):
        return self.reactor.callLater(seconds, fn, *args)


class RecordingDB(InlineDB):
    """InlineDB that records each write transaction: (function name, event IDs)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, list[str]]] = []

    def run(self, fn, *args, **kwargs):
        name = getattr(fn, "__name__", "")
        if name in ("write_events", "_write_batch"):
            self.writes.append((name, [ev.event_id for ev in args[0]]))
        return super().run(fn, *args, **kwargs)


class Room:
    """A chain of plain messages in one room, each on top of the previous one."""

    def __init__(self) -> None:
        self.create = build_create_event(
            V12,
            server_name=SERVER,
            signing_key=KEY,
            creator=f"@alice:{SERVER}",
            content={},
            origin_server_ts=1,
        )
        self.tip = self.create.event_id
        self.depth = 1
        self.n = 0

    def message(self):
        self.n += 1
        self.depth += 1
        ev = build_event(
            V12,
            server_name=SERVER,
            signing_key=KEY,
            type="m.room.message",
            sender=f"@alice:{SERVER}",
            content={"body": f"m{self.n}"},
            room_id=self.create.room_id,
            prev_events=[self.tip],
            auth_events=[self.create.event_id],
            depth=self.depth,
            origin_server_ts=1000 + self.n,
        )
        self.tip = ev.event_id
        return ev


def make(clock="timer", **kw):
    db = RecordingDB()
    clk = TimerClock() if clock == "timer" else None
    p = EventPersister(db, RecordingNotifier(), clock=clk, **kw)
    p.start_sync()
    return db, clk, p, Room()


def stored_ids(db) -> set[str]:
    return set(db.run_sync(lambda c: [r[0] for r in c.execute(select(events.c.event_id))]))


def failure_of(d):
    out: list = []
    d.addErrback(out.append)
    assert out, "the Deferred did not fail"
    return out[0]


# --- hold / release --------------------------------------------------------------------------


def test_events_queued_under_a_hold_are_written_in_one_batch_at_release():
    db, clock, p, room = make()
    p.hold()
    evs = [room.message() for _ in range(3)]
    ds = [p.enqueue(ev) for ev in evs]
    assert not any(d.called for d in ds)
    assert db.writes == [] and stored_ids(db) == set()
    p.release()
    assert all(d.called for d in ds)
    assert [result_of(d).event_id for d in ds] == [ev.event_id for ev in evs]
    assert db.writes == [("write_events", [ev.event_id for ev in evs])]
    assert stored_ids(db) == {ev.event_id for ev in evs}
    assert p.batches_written == 1
    orderings = [meta(ev).stream_ordering for ev in evs]
    assert orderings == list(range(orderings[0], orderings[0] + 3))
    assert p.max_persisted == orderings[-1]
    # One notification for the room with its highest stream ordering.
    assert p.notifier.calls == [(room.create.room_id, orderings[-1], ())]


def test_nested_holds_write_at_the_last_release():
    db, clock, p, room = make()
    p.hold()
    p.hold()
    d1 = p.enqueue(room.message())
    p.release()
    d2 = p.enqueue(room.message())
    assert not d1.called and not d2.called and db.writes == []
    p.release()
    assert d1.called and d2.called
    assert len(db.writes) == 1 and len(db.writes[0][1]) == 2


def test_release_without_hold_is_harmless():
    db, clock, p, room = make()
    p.release()
    d = p.enqueue(room.message())
    assert d.called and len(db.writes) == 1


def test_without_hold_each_enqueue_writes_at_once():
    db, clock, p, room = make()
    d = p.enqueue(room.message())
    assert d.called and len(db.writes) == 1


def test_hold_timer_forces_the_write_after_max_hold():
    db, clock, p, room = make()
    p.hold()
    clock.reactor.advance(10)  # the delay counts from the first event
    ev = room.message()
    d = p.enqueue(ev)
    clock.reactor.advance(MAX_HOLD_S / 2)
    assert not d.called and db.writes == []
    d2 = p.enqueue(room.message())  # still the first event's deadline
    clock.reactor.advance(MAX_HOLD_S / 2)
    assert d.called and d2.called  # written although still held
    assert len(db.writes) == 1 and len(db.writes[0][1]) == 2
    # Held again for what comes next: a new deadline from the next event.
    d3 = p.enqueue(room.message())
    assert not d3.called
    clock.reactor.advance(MAX_HOLD_S)
    assert d3.called and len(db.writes) == 2
    p.release()  # nothing left: no further write
    assert len(db.writes) == 2
    assert clock.reactor.getDelayedCalls() == []


def test_release_before_the_deadline_cancels_the_timer():
    db, clock, p, room = make()
    p.hold()
    d = p.enqueue(room.message())
    assert len(clock.reactor.getDelayedCalls()) == 1
    p.release()
    assert d.called and len(db.writes) == 1
    assert clock.reactor.getDelayedCalls() == []


def test_without_a_clock_holds_do_not_block():
    db, clock, p, room = make(clock=None)
    p.hold()
    d = p.enqueue(room.message())
    assert d.called and len(db.writes) == 1
    p.release()
    assert len(db.writes) == 1


def test_flush_writes_despite_a_hold():
    db, clock, p, room = make()
    p.hold()
    d1 = p.enqueue(room.message())
    p.flush()
    assert d1.called and len(db.writes) == 1
    # The hold still applies to what is queued afterwards.
    d2 = p.enqueue(room.message())
    assert not d2.called
    p.release()
    assert d2.called and len(db.writes) == 2


def test_flush_with_nothing_queued_writes_nothing():
    db, clock, p, room = make()
    p.hold()
    p.flush()
    p.release()
    assert db.writes == []


# --- enqueue_extra ---------------------------------------------------------------------------


def test_extra_runs_in_the_same_transaction_after_the_events():
    db, clock, p, room = make()
    seen: list = []

    def extra(conn, tag, value):
        # Inside the events' transaction: they are visible here already.
        n = conn.execute(select(func.count()).select_from(events)).scalar()
        seen.append((tag, value, n))
        conn.execute(text("CREATE TABLE IF NOT EXISTS extra_rows (tag TEXT)"))
        conn.execute(text("INSERT INTO extra_rows (tag) VALUES (:t)"), {"t": tag})

    p.hold()
    evs = [room.message(), room.message()]
    ds = [p.enqueue(ev) for ev in evs]
    dx = p.enqueue_extra(extra, "txn-1", {"k": 1})
    assert seen == [] and not dx.called
    p.release()
    assert seen == [("txn-1", {"k": 1}, 2)]
    assert len(db.writes) == 1 and db.writes[0] == ("_write_batch", [ev.event_id for ev in evs])
    assert dx.called and result_of(dx) is None
    assert all(d.called for d in ds)
    assert db.run_sync(lambda c: c.execute(text("SELECT tag FROM extra_rows")).scalar()) == "txn-1"


def test_failing_extra_fails_alone_and_its_events_are_stored():
    """The write is split: the events queued before the extra commit without it, the
    extra's own changes are rolled back and only its Deferred fails."""
    db, clock, p, room = make()
    failed_hook: list = []
    p.on_failed.append(lambda evs: failed_hook.append([e.event_id for e in evs]))

    def extra(conn):
        conn.execute(text("INSERT INTO extra_rows (tag) VALUES ('x')"))
        raise RuntimeError("constraint violated")

    db.run_sync(lambda c: c.execute(text("CREATE TABLE extra_rows (tag TEXT)")))
    first = p.max_persisted
    p.hold()
    evs = [room.message(), room.message()]
    ds = [p.enqueue(ev) for ev in evs]
    dx = p.enqueue_extra(extra)
    p.release()
    assert failure_of(dx).check(RuntimeError)
    assert [result_of(d).event_id for d in ds] == [ev.event_id for ev in evs]
    assert stored_ids(db) == {ev.event_id for ev in evs}
    assert db.run_sync(lambda c: c.execute(text("SELECT count(*) FROM extra_rows")).scalar()) == 0
    assert failed_hook == []
    assert [meta(ev).stream_ordering for ev in evs] == [first + 1, first + 2]
    assert p.max_persisted == first + 2
    # Not stuck: the next event gets the next stream ordering.
    ev = room.message()
    d = p.enqueue(ev)
    assert d.called and meta(ev).stream_ordering == first + 3


def test_a_write_that_always_fails_fails_every_event_and_the_extra():
    db, clock, p, room = make()
    failed_hook: list = []
    p.on_failed.append(lambda evs: failed_hook.append([e.event_id for e in evs]))
    ran: list = []
    real_run = db.run
    broken = [True]

    def run(fn, *args, **kwargs):
        if broken[0] and getattr(fn, "__name__", "") in ("write_events", "_write_batch"):
            return defer.fail(RuntimeError("disk full"))
        return real_run(fn, *args, **kwargs)

    db.run = run
    first = p.max_persisted
    p.hold()
    evs = [room.message(), room.message()]
    ds = [p.enqueue(ev) for ev in evs]
    dx = p.enqueue_extra(lambda conn: ran.append(1))
    p.release()
    assert failure_of(ds[0]).check(RuntimeError)
    # The second message builds on the first, which is not stored: it is not written.
    assert failure_of(ds[1]).value.errcode == "M_UNKNOWN"
    assert failure_of(dx).check(RuntimeError)
    assert ran == [] and stored_ids(db) == set()
    assert failed_hook == [[ev.event_id for ev in evs]]
    assert p.max_persisted == first and p.batches_written == 0
    assert all(meta(ev).stream_ordering is None for ev in evs)
    broken[0] = False
    other = Room()
    other.n = 100
    ev = other.message()
    assert p.enqueue(ev).called and meta(ev).stream_ordering == first + 1


def test_an_event_whose_writes_fail_fails_alone_and_the_extra_commits():
    """An inbound transaction's stored response (an extra) still commits when one of
    the transaction's events could not be stored: ingest then forgets the response, so
    a retry is processed again."""
    db, clock, p, room = make()
    real_run = db.run
    other = Room()
    other.n = 100  # not the same events as ``room``'s
    bad = other.message()

    def run(fn, *args, **kwargs):
        if getattr(fn, "__name__", "") in ("write_events", "_write_batch") and any(
            ev.event_id == bad.event_id for ev in args[0]
        ):
            return defer.fail(RuntimeError("refused"))
        return real_run(fn, *args, **kwargs)

    db.run = run
    ran: list = []
    p.hold()
    good = room.message()
    d_good, d_bad = p.enqueue(good), p.enqueue(bad)
    dx = p.enqueue_extra(lambda conn: ran.append(1))
    p.release()
    assert failure_of(d_bad).check(RuntimeError)
    assert result_of(d_good) is good and result_of(dx) is None and ran == [1]
    assert stored_ids(db) == {good.event_id}


def test_extra_with_no_events():
    db, clock, p, room = make()
    ran: list = []
    d = p.enqueue_extra(lambda conn, a, b: ran.append((a, b)), 1, 2)
    assert d.called and result_of(d) is None and ran == [(1, 2)]
    assert p.batches_written == 0 and p.notifier.calls == []
    assert db.writes == [("_write_batch", [])]
    # Under a hold it waits like an event.
    p.hold()
    d2 = p.enqueue_extra(lambda conn: ran.append("held"))
    assert not d2.called
    p.release()
    assert d2.called and ran[-1] == "held"
    # Events afterwards get the next stream orderings as usual.
    before = p.max_persisted
    ev = room.message()
    result_of(p.enqueue(ev))
    assert meta(ev).stream_ordering == before + 1


def test_failing_extra_alone_fails_only_itself():
    db, clock, p, room = make()
    hook: list = []
    p.on_failed.append(hook.append)

    def boom(conn):
        raise ValueError("no")

    d = p.enqueue_extra(boom)
    assert failure_of(d).check(ValueError)
    assert hook == []  # no events failed
    ev = room.message()
    assert p.enqueue(ev).called and stored_ids(db) == {ev.event_id}


def test_extra_counts_for_the_hold_timer():
    db, clock, p, room = make()
    p.hold()
    d = p.enqueue_extra(lambda conn: None)
    assert not d.called
    clock.reactor.advance(MAX_HOLD_S)
    assert d.called
    p.release()


@pytest.mark.parametrize("max_batch", [2, 3])
def test_extra_never_commits_before_the_events_queued_before_it(max_batch):
    """With more events queued than fit one batch, the extra goes into a later write, but
    never one before the events queued ahead of it."""
    db, clock, p, room = make(max_batch=max_batch)
    order: list = []
    p.hold()
    evs = [room.message() for _ in range(5)]
    ds = [p.enqueue(ev) for ev in evs]
    for d, ev in zip(ds, evs, strict=True):
        d.addCallback(lambda _, eid=ev.event_id: order.append(eid))
    dx = p.enqueue_extra(lambda conn: order.append("extra"))
    p.release()
    assert dx.called and all(d.called for d in ds)
    earlier = [eid for _, ids in db.writes[:-1] for eid in ids]
    assert earlier  # the events did not fit one write
    assert order[: len(earlier)] == earlier and order[len(earlier)] == "extra"
    written = [eid for _, ids in db.writes for eid in ids]
    assert written == [ev.event_id for ev in evs]
    assert all(len(ids) <= max_batch for _, ids in db.writes)
    # The extra ran in the last write, which carried the last events.
    assert db.writes[-1][0] == "_write_batch" and evs[-1].event_id in db.writes[-1][1]


def test_room_service_sends_under_a_hold_commit_together():
    """Through the room service (its persister has the service's clock): two sends
    made while held are answered once the single combined write committed."""
    from rooms_support import make_service, uid

    db = RecordingDB()
    svc = make_service(db, clock=TimerClock())
    room_id = result_of(svc.create_room(uid("alice"), {"preset": "public_chat"}))
    n_writes = len(db.writes)
    svc.persister.hold()
    d1 = defer.ensureDeferred(
        svc.send_event(uid("alice"), room_id, "m.room.message", {"body": "one"})
    )
    d2 = defer.ensureDeferred(
        svc.send_event(uid("alice"), room_id, "m.room.message", {"body": "two"})
    )
    assert not d1.called and not d2.called
    svc.persister.release()
    e1, e2 = result_of(d1), result_of(d2)
    assert len(db.writes) == n_writes + 1 and db.writes[-1][1] == [e1, e2]
    evs = result_of(svc.get_events_in_range(room_id, None, None, 2, "b"))
    assert [e.content["body"] for e in evs] == ["two", "one"]
