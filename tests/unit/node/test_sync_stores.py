"""Receipts, account data and filter storage (SQLite in memory, synchronous DB)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from support.db import InlineDB
from support.deferreds import result_of
from twisted.internet import task

import schema.sync  # noqa: F401 - registers the tables
from federation.errors import BadJSON, InvalidParam, NotFound
from node.clock import ReactorClock
from node.stream_tokens import StreamToken
from node.sync.account_data import AccountDataStore
from node.sync.filter_store import FilterStore
from node.sync.notifier import SyncNotifier
from node.sync.receipts import ReceiptStore
from schema.events import events

ROOM = "!room:school.example"


@pytest.fixture
def env():
    clock = task.Clock()
    clock.advance(1_700_000_000)
    db = InlineDB()
    notifier = SyncNotifier(ReactorClock(clock))
    return db, notifier, ReactorClock(clock)


def _event_row(conn, so, event_id, room=ROOM):
    conn.execute(
        insert(events).values(
            stream_ordering=so,
            event_id=event_id,
            room_id=room,
            type="m.room.message",
            sender="@a:school.example",
            depth=so,
            origin_server_ts=0,
            json="{}",
        )
    )


def test_receipts_replace_per_key_and_batch_per_room(env):
    db, notifier, clock = env
    db.run_sync(lambda c: [_event_row(c, i, f"$e{i}") for i in (1, 2, 3)])
    store = ReceiptStore(db, notifier, clock)
    s1 = result_of(store.set_receipt(ROOM, "m.read", "@a:x", "$e1"))
    s2 = result_of(store.set_receipt(ROOM, "m.read", "@a:x", "$e2"))
    s3 = result_of(store.set_receipt(ROOM, "m.read", "@b:x", "$e2", thread_id="main"))
    assert s1 < s2 < s3
    assert notifier.current_token().receipts == s3
    got = result_of(store.receipts_for_rooms([ROOM], 0, "@c:x"))
    content = got[ROOM]["content"]
    assert got[ROOM]["type"] == "m.receipt"
    assert set(content) == {"$e2"}  # @a's receipt moved from $e1
    assert content["$e2"]["m.read"]["@a:x"] == {"ts": 1_700_000_000_000}
    assert content["$e2"]["m.read"]["@b:x"]["thread_id"] == "main"
    # Incremental: only receipts after s2.
    newer = result_of(store.receipts_for_rooms([ROOM], s2, "@c:x"))
    assert list(newer[ROOM]["content"]["$e2"]["m.read"]) == ["@b:x"]
    assert result_of(store.receipts_for_rooms([ROOM], s3, "@c:x")) == {}


def test_private_receipts_only_for_owner(env):
    db, notifier, clock = env
    db.run_sync(lambda c: [_event_row(c, i, f"$e{i}") for i in (1, 2)])
    store = ReceiptStore(db, notifier, clock)
    waiting_owner = []
    notifier.wait("@a:x", [], StreamToken(), 1000).addBoth(waiting_owner.append)
    sid = result_of(store.set_receipt(ROOM, "m.read.private", "@a:x", "$e2"))
    assert waiting_owner == [True]
    assert notifier.rooms_changed_since([ROOM], StreamToken()) == set()  # not broadcast
    assert result_of(store.receipts_for_rooms([ROOM], 0, "@b:x")) == {}
    mine = result_of(store.receipts_for_rooms([ROOM], 0, "@a:x"))
    assert mine[ROOM]["content"]["$e2"]["m.read.private"]["@a:x"]["ts"] > 0
    assert notifier.user_changed_since("@a:x", StreamToken(receipts=sid - 1))


def test_read_position_is_the_furthest_of_public_and_private(env):
    db, notifier, clock = env
    db.run_sync(lambda c: [_event_row(c, i, f"$e{i}") for i in (1, 2, 3, 4)])
    store = ReceiptStore(db, notifier, clock)
    result_of(store.set_receipt(ROOM, "m.read", "@a:x", "$e3"))
    result_of(store.set_receipt(ROOM, "m.read.private", "@a:x", "$e1"))
    result_of(store.set_receipt(ROOM, "m.read", "@a:x", "$e4", thread_id="$thread"))
    assert result_of(store.read_positions("@a:x", [ROOM, "!other:x"])) == {ROOM: 3}
    result_of(store.set_receipt(ROOM, "m.read.private", "@a:x", "$e4"))
    assert result_of(store.read_positions("@a:x", [ROOM])) == {ROOM: 4}
    # A fresh store finds the stream position again.
    other = SyncNotifier(clock)
    assert result_of(ReceiptStore(db, other, clock).load_position()) >= 4
    assert other.current_token().receipts >= 4


def test_account_data_global_and_room(env):
    db, notifier, _clock = env
    store = AccountDataStore(db, notifier)
    s1 = result_of(store.set("@a:x", None, "org.example.cfg", {"k": 1}))
    s2 = result_of(store.set("@a:x", ROOM, "m.tag", {"tags": {"u.work": {}}}))
    s3 = result_of(store.set("@a:x", None, "org.example.cfg", {"k": 2}))
    result_of(store.set("@b:x", None, "org.example.cfg", {"other": True}))
    assert result_of(store.get("@a:x", None, "org.example.cfg")) == {"k": 2}
    assert result_of(store.get("@a:x", ROOM, "org.example.cfg")) is None  # no fallback
    assert result_of(store.get("@a:x", ROOM, "m.tag")) == {"tags": {"u.work": {}}}
    glob, rooms = result_of(store.changes_since("@a:x", 0))
    assert glob == [{"type": "org.example.cfg", "content": {"k": 2}}]
    assert rooms == {ROOM: [{"type": "m.tag", "content": {"tags": {"u.work": {}}}}]}
    glob, rooms = result_of(store.changes_since("@a:x", s2))
    assert glob == [{"type": "org.example.cfg", "content": {"k": 2}}] and rooms == {}
    assert result_of(store.changes_since("@a:x", s3)) == ([], {})
    assert notifier.user_changed_since("@a:x", StreamToken(account_data=s1))
    assert not notifier.user_changed_since("@b:x", StreamToken(account_data=s3 + 1))


def test_stream_ids_never_reused_after_delete(env):
    db, notifier, _clock = env
    store = AccountDataStore(db, notifier)
    ids = [result_of(store.set("@a:x", None, "t", {"n": i})) for i in range(4)]
    assert ids == sorted(set(ids))


def test_filters_store_and_resolve(env):
    db, _notifier, _clock = env
    store = FilterStore(db)
    fid = result_of(store.create("@a:x", {"room": {"timeline": {"limit": 3}}}))
    fid2 = result_of(store.create("@a:x", {}))
    assert fid != fid2 and not fid.startswith("{")
    assert result_of(store.get_definition("@a:x", fid)) == {"room": {"timeline": {"limit": 3}}}
    # A fresh store (no cache) reads it back from the database.
    fresh = FilterStore(db)
    assert result_of(fresh.get("@a:x", fid)).timeline_limit == 3
    with pytest.raises(NotFound):
        result_of(fresh.get("@b:x", fid))  # filters are per user
    with pytest.raises(NotFound):
        result_of(fresh.get("@a:x", "nope"))
    with pytest.raises(BadJSON):
        result_of(store.create("@a:x", {"room": {"timeline": {"limit": -1}}}))
    assert result_of(store.resolve_sync_param("@a:x", fid)).timeline_limit == 3
    inline = result_of(store.resolve_sync_param("@a:x", '{"room":{"timeline":{"limit":2}}}'))
    assert inline.timeline_limit == 2
    for bad in ('{"room":', '{"room": {"timeline": {"limit": 0}}}', "99"):
        with pytest.raises(InvalidParam):
            result_of(store.resolve_sync_param("@a:x", bad))
