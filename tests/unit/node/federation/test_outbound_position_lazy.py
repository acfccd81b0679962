"""The fan-out position (``FederationSender``): batches with nothing to send (events of
other servers) do not write it at once, it is saved ``POSITION_SAVE_DELAY_S`` later; a
batch with local events queues them and writes the position in the same call; after a
restart the start-up catch-up sends nothing twice and loses nothing.

Spec: server-server API "PDUs" / "Transactions" (a server sends the events it originates
to the other servers in the room; a retried transaction keeps its ``txnId``).
"""

from __future__ import annotations

from support.db import InlineDB
from support.deferreds import result_of

from federation.events.builder import build_event
from federation.keys import SigningKey
from fedout_support import FakeAccounts, FakeClient, Policy, make_clock, make_rooms, remote_join
from node.federation.outbound import queue
from node.federation.outbound.backoff import BackoffPolicy
from node.federation.outbound.fanout import POSITION_SAVE_DELAY_S
from node.federation.outbound.wiring import attach, build_sender
from node.rooms.event_meta import meta

A = "a.test"
B = "b.test"
ALICE = f"@alice:{A}"
BOB = f"@bob:{B}"
KEY_A = SigningKey("a1", b"\x01" * 32)
KEY_B = SigningKey("b1", b"\x02" * 32)


class Node:
    """A's rooms + outbound sender on a database that survives 'restarts'; records the
    fan-out's position writes (``set_position``, ``enqueue_pdus``)."""

    def __init__(self, db=None, client=None):
        self.db = db or InlineDB()
        self.reactor, self.clock = make_clock()
        self.client = client or FakeClient()
        self.rooms = make_rooms(A, self.db, self.clock, KEY_A, accounts=FakeAccounts(()))
        self.rooms.accounts.profiles = {ALICE: {"displayname": "Alice"}}
        self.sender = build_sender(
            db=self.db,
            clock=self.clock,
            client=self.client,
            server_name=A,
            rooms=self.rooms,
            policy=Policy(),
            backoff=BackoffPolicy(initial_ms=1000, max_ms=8000),
            random=lambda: 0.5,
        )
        attach(self.sender, rooms=self.rooms)
        self.position_writes: list[tuple[str, object]] = []
        real = self.db.run

        def run(fn, *args, **kwargs):
            name = getattr(fn, "__name__", "")
            if name == "set_position":
                self.position_writes.append((name, args[0]))
            elif name == "enqueue_pdus" and len(args) > 1 and args[1] is not None:
                self.position_writes.append((name, args[1]))
            return real(fn, *args, **kwargs)

        self.db.run = run

    def start(self):
        result_of(self.sender.start())

    def send(self, room_id, body):
        eid = result_of(
            self.rooms.send_event(
                ALICE, room_id, "m.room.message", {"msgtype": "m.text", "body": body}
            )
        )
        result_of(self.sender.flushed())
        return eid

    def receive(self, room_id, body):
        """A message of B's user committed here (as the inbound pipeline would)."""
        svc = self.rooms

        async def go():
            room = await svc.get_room(room_id)
            async with room.lock:
                ev = build_event(
                    room.room_version,
                    server_name=B,
                    signing_key=KEY_B,
                    type="m.room.message",
                    sender=BOB,
                    content={"msgtype": "m.text", "body": body},
                    room_id=room_id,
                    prev_events=list(room.extremities),
                    auth_events=[
                        room.state[k].event_id
                        for k in (
                            ("m.room.create", ""),
                            ("m.room.power_levels", ""),
                            ("m.room.member", BOB),
                        )
                    ],
                    depth=room.depth + 1,
                    origin_server_ts=svc.clock.time_ms(),
                )
                d = svc.commit_local(room, ev)
            await d
            return ev

        ev = result_of(go())
        result_of(self.sender.flushed())
        return ev

    def shared_room(self):
        room_id = result_of(self.rooms.create_room(ALICE, {"preset": "public_chat"}))
        remote_join(self.rooms, room_id, BOB, KEY_B)
        result_of(self.sender.flushed())
        return room_id

    def stored_position(self):
        return result_of(self.db.run(queue.get_position))

    def settle(self):
        """Let any delayed position save run."""
        self.reactor.advance(POSITION_SAVE_DELAY_S)


def recording_b(client):
    """B's /send: each transaction ID processed once; records the PDUs it got."""
    client.delivered = []
    seen = set()

    async def respond(dest, method, path, body, query):
        txn = path.rsplit("/", 1)[1]
        if txn not in seen:
            seen.add(txn)
            client.delivered.append((txn, body))
        return 200, {"pdus": {}}

    client.responder = respond


def delivered_bodies(client):
    """Message bodies B received, in order, duplicates included."""
    return [
        p["content"].get("body")
        for _, t in client.delivered
        for p in t["pdus"]
        if p["type"] == "m.room.message"
    ]


def _node():
    client = FakeClient()
    recording_b(client)
    n = Node(client=client)
    n.start()
    room_id = n.shared_room()
    n.send(room_id, "warm-up")  # a local batch: the position is saved with it
    n.settle()
    n.position_writes.clear()
    return n, room_id


# --- remote-only batches ---------------------------------------------------------------------


def test_remote_batch_saves_the_position_only_after_the_delay():
    n, room_id = _node()
    before = n.stored_position()
    ev = n.receive(room_id, "from b")
    so = meta(ev).stream_ordering
    assert so > before
    assert n.position_writes == [] and n.stored_position() == before
    n.reactor.advance(POSITION_SAVE_DELAY_S * 0.9)
    assert n.position_writes == [] and n.stored_position() == before
    n.reactor.advance(POSITION_SAVE_DELAY_S * 0.1)
    assert n.position_writes == [("set_position", so)]
    assert n.stored_position() == so
    # Nothing more is pending.
    n.reactor.advance(10 * POSITION_SAVE_DELAY_S)
    assert n.position_writes == [("set_position", so)]
    assert delivered_bodies(n.client) == ["warm-up"]  # nothing sent for b's events


def test_remote_batches_within_the_delay_make_one_write_of_the_last_position():
    n, room_id = _node()
    evs = [n.receive(room_id, f"r{i}") for i in range(5)]
    assert n.position_writes == []
    n.settle()
    assert n.position_writes == [("set_position", meta(evs[-1]).stream_ordering)]


def test_local_events_without_remote_servers_are_saved_lazily_too():
    n, room_id = _node()
    lonely = result_of(n.rooms.create_room(ALICE, {}))
    eid = result_of(n.rooms.send_event(ALICE, lonely, "m.room.message", {"body": "solo"}))
    result_of(n.sender.flushed())
    assert n.position_writes == []
    n.settle()
    so = meta(result_of(n.rooms.get_event(eid))).stream_ordering
    assert n.position_writes == [("set_position", so)]


# --- local batches ---------------------------------------------------------------------------


def test_local_batch_queues_and_writes_the_position_in_the_same_call():
    n, room_id = _node()
    eid = n.send(room_id, "hello b")
    so = meta(result_of(n.rooms.get_event(eid))).stream_ordering
    assert n.position_writes == [("enqueue_pdus", so)]
    assert n.stored_position() == so
    assert delivered_bodies(n.client)[-1] == "hello b"


def test_local_batch_after_remote_ones_saves_the_position_and_the_timer_writes_nothing():
    n, room_id = _node()
    n.receive(room_id, "r1")
    eid = n.send(room_id, "local")
    so = meta(result_of(n.rooms.get_event(eid))).stream_ordering
    assert n.position_writes == [("enqueue_pdus", so)]
    assert n.stored_position() == so
    n.settle()  # the pending save finds nothing newer
    assert n.position_writes == [("enqueue_pdus", so)]
    assert n.stored_position() == so


def test_remote_batch_after_a_local_one_is_saved_later():
    n, room_id = _node()
    n.send(room_id, "local")
    r = n.receive(room_id, "r1")
    n.settle()
    assert n.stored_position() == meta(r).stream_ordering
    assert n.position_writes[-1] == ("set_position", meta(r).stream_ordering)


def test_stop_cancels_the_pending_save():
    n, room_id = _node()
    before = n.stored_position()
    n.receive(room_id, "r1")
    n.sender.stop()
    n.settle()
    assert n.position_writes == [] and n.stored_position() == before


# --- restarts ----------------------------------------------------------------------------------


def _restart(first):
    """Stop ``first`` (a crash for the pending save) and start a new node on its DB."""
    first.sender.stop()
    second = Node(db=first.db, client=first.client)
    second.start()
    return second


def test_restart_before_the_delayed_save_sends_nothing_twice():
    n, room_id = _node()
    n.send(room_id, "m1")
    saved = n.stored_position()
    r1 = n.receive(room_id, "r1")
    n.receive(room_id, "r2")
    assert n.stored_position() == saved  # the crash comes before the save
    second = _restart(n)
    # The catch-up re-read r1, r2 (and found nothing local): nothing re-sent.
    assert delivered_bodies(second.client) == ["warm-up", "m1"]
    second.settle()
    assert second.stored_position() > meta(r1).stream_ordering
    second.send(room_id, "m2")
    assert delivered_bodies(second.client) == ["warm-up", "m1", "m2"]


def test_local_event_committed_but_not_fanned_out_after_remote_ones_is_sent_on_start():
    n, room_id = _node()
    n.receive(room_id, "r1")  # position save pending
    # The crash: the event commits, the fan-out never sees it.
    n.rooms.persister.on_persisted.remove(n.sender.on_persisted)
    n.send(room_id, "lost?")
    n.receive(room_id, "r2")
    second = _restart(n)
    assert delivered_bodies(second.client) == ["warm-up", "lost?"]
    # and a third start sends nothing again
    third = _restart(second)
    third.settle()
    assert delivered_bodies(third.client) == ["warm-up", "lost?"]


def test_catch_up_of_remote_events_only_saves_the_position_later():
    n, room_id = _node()
    n.receive(room_id, "r1")
    last = n.receive(room_id, "r2")
    second = _restart(n)
    assert second.stored_position() < meta(last).stream_ordering
    second.settle()
    assert second.stored_position() == meta(last).stream_ordering
    # A third start has nothing to catch up on.
    third = _restart(second)
    assert third.position_writes == []
    assert delivered_bodies(third.client) == ["warm-up"]


# --- the delayed save and a batch being queued at the same time --------------------------------
# On PostgreSQL the DB has several threads: two db.run calls in flight may commit in
# either order.  These tests hold one call back (a "gate") to choose the order.


class Gate:
    """Holds back ``db.run`` calls of the function named ``name`` until ``open``."""

    def __init__(self, node, name):
        from twisted.internet import defer

        self.held: list = []
        real = node.db.run

        def run(fn, *args, **kwargs):
            if getattr(fn, "__name__", "") == name and self.closed:
                d = defer.Deferred()
                self.held.append((d, fn, args, kwargs))
                return d
            return real(fn, *args, **kwargs)

        self.closed = True
        self._real = real
        node.db.run = run

    def open(self):
        self.closed = False
        for d, fn, args, kwargs in self.held:
            self._real(fn, *args, **kwargs).chainDeferred(d)
        self.held = []

    def crash(self):
        """The held calls never commit; later calls pass."""
        self.closed = False
        self.held = []


def test_delayed_save_does_not_commit_a_position_ahead_of_rows_still_being_queued():
    """A local event is being queued (its write in flight) when the delayed save of an
    earlier remote batch fires: the save must not commit the local event's position
    before its queue rows (a crash then would lose the event for good)."""
    n, room_id = _node()
    n.receive(room_id, "r1")  # delayed save pending
    gate = Gate(n, "enqueue_pdus")
    result_of(n.rooms.send_event(ALICE, room_id, "m.room.message", {"body": "L"}))
    assert len(gate.held) == 1  # L's rows + position in flight
    n.settle()  # the delayed save's moment
    gate.crash()  # L's queue write never commits
    second = _restart(n)
    second.reactor.advance(10)
    assert delivered_bodies(second.client).count("L") == 1


def test_delayed_save_committing_late_does_not_move_the_position_back():
    """The delayed save is in flight when a local batch queues its rows with a newer
    position and commits first: the older position must not win (a restart would then
    send the local event again)."""
    n, room_id = _node()
    n.receive(room_id, "r1")
    gate = Gate(n, "set_position")
    n.settle()  # the delayed save starts, held
    assert len(gate.held) == 1
    result_of(n.rooms.send_event(ALICE, room_id, "m.room.message", {"body": "L"}))
    gate.open()
    result_of(n.sender.flushed())
    assert delivered_bodies(n.client).count("L") == 1
    second = _restart(n)
    second.reactor.advance(10)
    assert delivered_bodies(second.client).count("L") == 1


def test_delayed_save_during_the_start_up_catch_up_waits_for_it(monkeypatch):
    """The catch-up reads the stream in batches: a batch of remote events schedules the
    delayed save; if it fires while a later batch's local rows are being queued, it must
    not commit a position ahead of them."""
    from twisted.internet import defer

    from node.federation.outbound import fanout

    monkeypatch.setattr(fanout, "CATCH_UP_BATCH", 2)
    n, room_id = _node()
    n.rooms.persister.on_persisted.remove(n.sender.on_persisted)  # the first crash
    n.receive(room_id, "r1")
    n.receive(room_id, "r2")
    result_of(n.rooms.send_event(ALICE, room_id, "m.room.message", {"body": "L"}))
    n.sender.stop()
    second = Node(db=n.db, client=n.client)
    gate = Gate(second, "enqueue_pdus")
    started = defer.ensureDeferred(second.sender.start())
    assert not started.called and len(gate.held) == 1  # L's rows in flight
    second.settle()  # the delayed save's moment
    gate.crash()  # the second crash, mid catch-up
    second.sender.stop()
    third = _restart(second)
    third.reactor.advance(10)
    assert delivered_bodies(third.client).count("L") == 1


# --- a batch that fails to queue -------------------------------------------------------------


def test_a_batch_that_failed_to_queue_is_sent_after_a_restart():
    n, room_id = _node()
    real = n.db.run
    failing = {"left": 1}

    def run(fn, *args, **kwargs):
        if getattr(fn, "__name__", "") == "enqueue_pdus" and failing["left"]:
            failing["left"] -= 1
            raise RuntimeError("disk full")
        return real(fn, *args, **kwargs)

    n.db.run = run
    lost = n.send(room_id, "not queued")  # its queue write fails (logged)
    lost_so = meta(result_of(n.rooms.get_event(lost))).stream_ordering
    later = n.receive(room_id, "from b, later")  # a remote batch moves the position on
    n.send(room_id, "queued")  # a local batch writes a position too
    n.settle()
    assert n.stored_position() < lost_so  # never past the failed event
    assert meta(later).stream_ordering > lost_so
    assert "not queued" not in delivered_bodies(n.client)
    # Restart on the same database: the catch-up finds the failed event and sends it.
    n.sender.stop()
    restarted = Node(db=_unwrapped(n.db, real), client=n.client)
    restarted.start()
    result_of(restarted.sender.flushed())
    restarted.reactor.advance(60)
    assert delivered_bodies(n.client).count("not queued") == 1
    # What was queued after the failure may go out once more (at-least-once after a failed
    # write; a receiving server ignores an event ID it already has), never zero times.
    assert delivered_bodies(n.client).count("queued") >= 1


def _unwrapped(db, real_run):
    db.run = real_run
    return db
