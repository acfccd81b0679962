"""State groups (node/rooms/state_store.py) on the local send path: the state before
and after every event, message events sharing their room's group, one-entry deltas for
state events, periodic snapshots, reads from a cold cache, and ``get_state_at``."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import func, select
from support.db import InlineDB
from support.deferreds import result_of

from node.rooms.event_meta import meta
from node.rooms.state_store import StateStore, diff_states
from rooms_support import make_service, uid
from schema.federation import (
    event_state_groups,
    room_state_groups,
    state_group_entries,
    state_groups,
)


def _ids(state):
    return {k: e.event_id for k, e in state.items()}


def _count(db, table):
    return db.run_sync(lambda c: c.execute(select(func.count()).select_from(table)).scalar())


def test_messages_reuse_the_group_and_state_events_add_one_entry():
    db = InlineDB()
    svc = make_service(db)
    room = result_of(svc.create_room(uid("alice"), {"preset": "public_chat"}))
    store = svc.state_store
    before_state = _ids(result_of(svc.get_current_state(room)))
    groups_before = _count(db, state_groups)
    entries_before = _count(db, state_group_entries)

    m1 = result_of(svc.send_event(uid("alice"), room, "m.room.message", {"body": "a"}))
    m2 = result_of(svc.send_event(uid("alice"), room, "m.room.message", {"body": "b"}))
    # Messages write no state group and no entries: only the event -> group mapping.
    assert _count(db, state_groups) == groups_before
    assert _count(db, state_group_entries) == entries_before
    g1 = result_of(store.get_event_groups([m1, m2]))
    assert g1[m1][0] == g1[m1][1] == g1[m2][0] == g1[m2][1]

    topic = result_of(svc.send_event(uid("alice"), room, "m.room.topic", {"topic": "T"}, ""))
    assert _count(db, state_groups) == groups_before + 1
    assert _count(db, state_group_entries) == entries_before + 1  # a one-entry delta
    assert result_of(store.get_state_ids_before(topic)) == before_state
    after = result_of(store.get_state_ids_after(topic))
    assert after == {**before_state, ("m.room.topic", ""): topic}
    m3 = result_of(svc.send_event(uid("alice"), room, "m.room.message", {"body": "c"}))
    assert result_of(store.get_state_ids_before(m3)) == after

    # The room's current group is recorded and matches the in-memory current state.
    current = db.run_sync(
        lambda c: c.execute(
            select(room_state_groups.c.state_group).where(room_state_groups.c.room_id == room)
        ).scalar()
    )
    assert result_of(store.get_state(current)) == _ids(result_of(svc.get_current_state(room)))


def test_cold_reads_and_snapshots_match_the_history():
    db = InlineDB()
    svc = make_service(db)
    svc.state_store.max_chain = 3
    room = result_of(svc.create_room(uid("alice"), {"preset": "public_chat"}))
    expected_after = {}
    for i in range(10):
        eid = result_of(svc.send_event(uid("alice"), room, "m.room.topic", {"topic": str(i)}, ""))
        expected_after[eid] = _ids(result_of(svc.get_current_state(room)))
        mid = result_of(svc.send_event(uid("alice"), room, "m.room.message", {"body": str(i)}))
        expected_after[mid] = expected_after[eid]
    # Chains are bounded: snapshots (prev_group NULL) appear, no chain is longer than 3.
    rows = db.run_sync(lambda c: list(c.execute(select(state_groups))))
    assert max(r.chain_len for r in rows) <= 3
    assert sum(1 for r in rows if r.prev_group is None) >= 3

    cold = StateStore(db)  # nothing in memory: everything from the database
    cold.start_sync()
    for eid, state in expected_after.items():
        assert result_of(cold.get_state_ids_after(eid)) == state, eid


def test_get_state_at_uses_state_groups():
    db = InlineDB()
    svc = make_service(db)
    room = result_of(svc.create_room(uid("alice"), {"preset": "public_chat"}))
    t1 = result_of(svc.send_event(uid("alice"), room, "m.room.topic", {"topic": "one"}, ""))
    pos = meta(result_of(svc.get_event(t1))).stream_ordering
    result_of(svc.send_event(uid("alice"), room, "m.room.topic", {"topic": "two"}, ""))
    state = result_of(svc.get_state_at(room, pos))
    assert state[("m.room.topic", "")].content["topic"] == "one"
    state = result_of(svc.get_state_at(room, svc.current_stream_ordering()))
    assert state[("m.room.topic", "")].content["topic"] == "two"


def test_events_without_groups_fall_back_to_the_linear_history():
    db = InlineDB()
    svc = make_service(db)
    room = result_of(svc.create_room(uid("alice"), {"preset": "public_chat"}))
    topic = result_of(svc.send_event(uid("alice"), room, "m.room.topic", {"topic": "x"}, ""))
    expected = _ids(result_of(svc.get_current_state(room)))
    # As if persisted before state groups existed.
    db.run_sync(lambda c: c.execute(event_state_groups.delete()))
    cold = StateStore(db)
    cold.start_sync()
    assert result_of(cold.get_state_ids_after(topic)) == expected
    before = dict(expected)
    del before[("m.room.topic", "")]
    assert result_of(cold.get_state_ids_before(topic)) == before


def test_diff_states():
    a = {("t", ""): "$1", ("m", "@a"): "$2"}
    b = {("t", ""): "$3", ("n", ""): "$4"}
    assert diff_states(a, b) == {("t", ""): "$3", ("n", ""): "$4", ("m", "@a"): None}
