"""One event that cannot be stored must not fail other users' sends.

The persister writes many users' events in one database transaction.  An event the
database refuses (a trigger here, standing in for PostgreSQL refusing a NUL character or
anything else) or that cannot even be turned into a row (JSON nested too deep to encode, a
NUL in a column) must fail alone: the other events of its batch are stored and answered,
the bad event's room can still be used afterwards (its forward extremities never name the
unstored event), and nothing is stored twice.

Everything runs in process on a real SQLite database (``InlineDB``); the persister is held
while the sends are made, so they all land in ONE batch, as under load.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import defer, task
from twisted.python.failure import Failure

from federation.errors import MatrixError
from rooms_support import Api, StepClock, make_service, uid
from schema.events import events, forward_extremities
from test_rooms_postgres import pg_url  # noqa: F401 - the PostgreSQL fixture

ALICE, BOB, CAROL = uid("alice"), uid("bob"), uid("carol")
V3 = "/_matrix/client/v3"
REFUSED = "org.example.refused"


class HoldClock(StepClock):
    """Distinct timestamps, and timers on a ``task.Clock`` (the persister's hold timer)."""

    def __init__(self) -> None:
        super().__init__()
        self.reactor = task.Clock()

    def call_later(self, seconds, fn, *args):
        return self.reactor.callLater(seconds, fn, *args)


def setup(*, refuse_type: str | None = REFUSED):
    db = InlineDB()
    svc = make_service(db, clock=HoldClock())
    rooms = {
        u: result_of(svc.create_room(u, {"preset": "public_chat"})) for u in (ALICE, BOB, CAROL)
    }
    if refuse_type is not None:
        db.run_sync(
            lambda c: c.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON events "
                    f"WHEN NEW.type = '{refuse_type}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
                )
            )
        )
    return db, svc, rooms


def send(svc, user, room_id, etype="m.room.message", content=None, state_key=None, txn=None):
    return defer.ensureDeferred(
        svc.send_event(
            user,
            room_id,
            etype,
            content if content is not None else {"body": "hi"},
            state_key=state_key,
            txn=txn,
        )
    )


def outcome(d):
    """What the sender got: the event ID, or the ``Failure`` (consumed)."""
    out: list = []
    d.addBoth(out.append)
    assert out, "the send did not complete"
    return out[0]


def failed(result) -> bool:
    return isinstance(result, Failure)


def stored(db) -> list[str]:
    return db.run_sync(
        lambda c: [
            r[0] for r in c.execute(select(events.c.event_id).order_by(events.c.stream_ordering))
        ]
    )


def stored_row(db, event_id):
    return db.run_sync(
        lambda c: c.execute(select(events).where(events.c.event_id == event_id)).first()
    )


def extremities(db, room_id) -> set[str]:
    fe = forward_extremities.c
    return set(
        db.run_sync(
            lambda c: [r[0] for r in c.execute(select(fe.event_id).where(fe.room_id == room_id))]
        )
    )


def count_events(db) -> int:
    return db.run_sync(lambda c: c.execute(select(func.count()).select_from(events)).scalar())


def batch(svc, sends):
    """Make the sends while the persister is held, so they are written as one batch."""
    svc.persister.hold()
    ds = [send(*args, **kw) for args, kw in sends]
    svc.persister.release()
    return [outcome(d) for d in ds]


def assert_room_still_usable(svc, db, room_id, user, bad_ids):
    """A user of the room sends (in process, as a client would) and it works: the new
    event builds on stored events only, and the room's extremities are stored events."""
    api = Api(svc)
    status, body = api.call(
        "PUT",
        f"{V3}/rooms/{room_id}/send/m.room.message/after",
        user,
        {"msgtype": "m.text", "body": "still here"},
    )
    assert status == 200
    new = result_of(svc.get_event(body["event_id"]))
    assert not set(new.prev_event_ids) & set(bad_ids)
    assert all(stored_row(db, p) is not None for p in new.prev_event_ids)
    assert extremities(db, room_id) == {new.event_id}
    room = result_of(svc.get_room(room_id))
    assert room.extremities == [new.event_id]
    assert not {ev.event_id for ev in room.state.values()} & set(bad_ids)


# --- the database refuses one event ----------------------------------------------------------


def test_a_refused_event_fails_alone_and_innocent_sends_in_its_batch_are_stored():
    db, svc, rooms = setup()
    before = count_events(db)
    ds = batch(
        svc,
        [
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a1"}}),
            ((svc, BOB, rooms[BOB]), {"content": {"body": "b1"}}),
            ((svc, CAROL, rooms[CAROL], REFUSED), {"content": {"x": 1}}),
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a2"}}),
            ((svc, BOB, rooms[BOB]), {"content": {"body": "b2"}, "txn": ("D", "t1")}),
        ],
    )
    innocent = [ds[0], ds[1], ds[3], ds[4]]
    assert not any(failed(d) for d in innocent)
    assert failed(ds[2])
    ids = innocent
    # Each innocent event is stored exactly once, in the order the sends were made.
    assert count_events(db) == before + 4
    assert [e for e in stored(db) if e in ids] == ids
    orderings = [stored_row(db, e).stream_ordering for e in ids]
    assert orderings == list(range(orderings[0], orderings[0] + 4))
    assert svc.current_stream_ordering() == orderings[-1]
    # The innocent users see their messages.
    for user, eid in ((ALICE, ids[0]), (BOB, ids[1]), (ALICE, ids[2]), (BOB, ids[3])):
        assert (result_of(svc.get_event(eid))).sender == user
    # A retried transaction ID answers the stored event, not a second copy.
    assert result_of(send(svc, BOB, rooms[BOB], content={"body": "b2"}, txn=("D", "t1"))) == ids[3]
    assert count_events(db) == before + 4
    # Nobody sees the refused event; carol's room still works.
    refused = [eid for eid, e in svc._events.items() if e.type == REFUSED]
    assert not any(stored_row(db, e) for e in refused)
    assert_room_still_usable(svc, db, rooms[CAROL], CAROL, refused)
    assert_room_still_usable(svc, db, rooms[ALICE], ALICE, refused)


def test_a_refused_event_alone_in_its_write_leaves_its_room_usable():
    db, svc, rooms = setup()
    room_id = rooms[CAROL]
    tip = set(result_of(svc.get_room(room_id)).extremities)
    assert failed(outcome(send(svc, CAROL, room_id, REFUSED, {"x": 1})))
    assert extremities(db, room_id) == tip
    assert_room_still_usable(svc, db, room_id, CAROL, [])


def test_events_built_on_a_refused_event_fail_with_it_other_rooms_do_not():
    """A later send in the refused event's room was built on top of it (its prev event):
    storing it would leave a hole in the room's history, so it fails too, with an error
    asking to send again; sends in other rooms are unaffected."""
    db, svc, rooms = setup()
    ds = batch(
        svc,
        [
            ((svc, CAROL, rooms[CAROL], REFUSED), {"content": {"x": 1}, "state_key": ""}),
            ((svc, CAROL, rooms[CAROL]), {"content": {"body": "on top"}}),
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a1"}}),
        ],
    )
    assert failed(ds[0]) and failed(ds[1]) and not failed(ds[2])
    err = ds[1].value
    assert isinstance(err, MatrixError) and err.http_status == 500
    assert "again" in err.message
    assert ds[2] in stored(db)
    assert_room_still_usable(svc, db, rooms[CAROL], CAROL, [])
    # The refused state event is not part of the room's state.
    state = result_of(svc.get_current_state(rooms[CAROL]))
    assert (REFUSED, "") not in state


def test_every_event_of_a_large_batch_but_the_refused_one_is_stored():
    db, svc, rooms = setup()
    sends = []
    for i in range(40):
        user = (ALICE, BOB)[i % 2]
        sends.append(((svc, user, rooms[user]), {"content": {"body": f"m{i}"}}))
    sends.insert(27, ((svc, CAROL, rooms[CAROL], REFUSED), {"content": {"x": 1}}))
    ds = batch(svc, sends)
    assert [failed(d) for d in ds] == [i == 27 for i in range(41)]
    ids = [d for i, d in enumerate(ds) if i != 27]
    assert [e for e in stored(db) if e in ids] == ids
    orderings = [stored_row(db, e).stream_ordering for e in ids]
    assert orderings == list(range(orderings[0], orderings[0] + 40))
    # The notifier woke each room's syncs up to its last event, never going backwards.
    for user in (ALICE, BOB):
        positions = [pos for room, pos, _ in svc.persister.notifier.calls if room == rooms[user]]
        assert positions == sorted(positions)
        assert positions[-1] == max(
            stored_row(db, e).stream_ordering
            for i, e in enumerate(ds)
            if i != 27 and sends[i][0][1] == user
        )


# --- events that cannot become a row at all ----------------------------------------------------


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("bad", ["nul_state_key", "nul_type", "too_deep"])
def test_an_event_that_cannot_be_encoded_is_refused_with_400_alone(bad):
    db, svc, rooms = setup(refuse_type=None)
    room_id = rooms[CAROL]
    if bad == "nul_state_key":
        args, kw = (
            (svc, CAROL, room_id, "org.example.state"),
            {"content": {}, "state_key": "a\x00b"},
        )
    elif bad == "nul_type":
        args, kw = (svc, CAROL, room_id, "org.example\x00type"), {"content": {}}
    else:
        args, kw = (svc, CAROL, room_id, "org.example.deep"), {"content": nested(260)}
    before = count_events(db)
    ds = batch(
        svc,
        [
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a1"}}),
            (args, kw),
            ((svc, BOB, rooms[BOB]), {"content": {"body": "b1"}}),
        ],
    )
    assert not failed(ds[0]) and not failed(ds[2])
    err = ds[1].value
    assert isinstance(err, MatrixError)
    assert (err.http_status, err.errcode) == (400, "M_BAD_JSON")
    assert count_events(db) == before + 2
    assert_room_still_usable(svc, db, room_id, CAROL, [])


def test_a_room_whose_row_does_not_fit_is_refused_alone():
    """``creation_content.type`` longer than the ``rooms.room_type`` column: the room
    creation fails with 400 and nothing of it is stored; a room created at the same
    time by someone else is."""
    db, svc, rooms = setup(refuse_type=None)
    before = count_events(db)
    svc.persister.hold()
    bad = defer.ensureDeferred(
        svc.create_room(ALICE, {"preset": "public_chat", "creation_content": {"type": "x" * 300}})
    )
    good = defer.ensureDeferred(svc.create_room(BOB, {"preset": "public_chat"}))
    svc.persister.release()
    err = outcome(bad)
    assert failed(err) and isinstance(err.value, MatrixError)
    assert (err.value.http_status, err.value.errcode) == (400, "M_BAD_JSON")
    good_room = outcome(good)
    assert result_of(svc.room_exists(good_room))
    stored_rooms = {e.room_id for e in (result_of(svc.get_event(i)) for i in stored(db))}
    assert good_room in stored_rooms and len(stored_rooms) == len(rooms) + 1
    assert count_events(db) > before
    assert_room_still_usable(svc, db, good_room, BOB, [])


# --- on PostgreSQL, which refuses what SQLite lets through -----------------------------------


@pytest.mark.postgres
def test_on_postgres_refused_and_unencodable_events_fail_alone(pg_url):  # noqa: F811 - the pytest fixture imported above
    """PostgreSQL refuses a NUL in a text column and strings longer than their
    ``VARCHAR``: such events are refused with 400 before the batch, and an event the
    database refuses all the same (a trigger) fails alone; the innocent sends of the
    same batch are stored."""
    db = InlineDB(pg_url)
    svc = make_service(db, clock=HoldClock())
    rooms = {
        u: result_of(svc.create_room(u, {"preset": "public_chat"})) for u in (ALICE, BOB, CAROL)
    }
    db.run_sync(
        lambda c: c.execute(
            text(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.type = '{REFUSED}' THEN RAISE EXCEPTION 'refused by the database'; "
                "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
    )
    db.run_sync(
        lambda c: c.execute(
            text(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON events FOR EACH ROW "
                "EXECUTE FUNCTION refuse_one()"
            )
        )
    )
    before = count_events(db)
    ds = batch(
        svc,
        [
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a1"}}),
            (
                (svc, CAROL, rooms[CAROL], "org.example.state"),
                {"content": {}, "state_key": "a\x00b"},
            ),
            ((svc, BOB, rooms[BOB]), {"content": {"body": "b1"}}),
            ((svc, CAROL, rooms[CAROL], REFUSED), {"content": {"x": 1}}),
            ((svc, BOB, rooms[BOB], "org.example.state"), {"content": {}, "state_key": "k" * 300}),
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a2"}, "txn": ("D", "t\x00")}),
            ((svc, ALICE, rooms[ALICE]), {"content": {"body": "a3"}}),
        ],
    )
    assert [failed(d) for d in ds] == [False, True, False, True, True, True, False]
    for i in (1, 4, 5):
        assert (ds[i].value.http_status, ds[i].value.errcode) == (400, "M_BAD_JSON")
    assert count_events(db) == before + 3
    assert [e for e in stored(db) if e in (ds[0], ds[2], ds[6])] == [ds[0], ds[2], ds[6]]
    assert_room_still_usable(svc, db, rooms[CAROL], CAROL, [])
