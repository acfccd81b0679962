"""The federation area's hand-written SQL (``node.federation.store``: the inbound
transaction record and ``event_status``, which run on the DB-API cursor for speed) on
SQLite and on PostgreSQL: the same answers on both."""

from __future__ import annotations

import pytest
from support.db import InlineDB
from support.deferreds import result_of

import schema.federation  # noqa: F401 - registers the tables
from node.federation import store
from rooms_support import make_service, uid
from test_rooms_postgres import pg_url  # noqa: F401 - the PostgreSQL fixture

ALICE = uid("alice")


def _scenario(db: InlineDB) -> None:
    svc = make_service(db)
    room_id = result_of(svc.create_room(ALICE, {"preset": "public_chat"}))
    ids = [ev.event_id for ev in result_of(svc.get_events_in_range(room_id, None, None, 100, "f"))]
    assert ids
    status = db.run_sync(lambda c: store.event_status(c, ids + ["$unknown"] + ids[:2]))
    assert set(status) == set(ids)  # unknown IDs are absent, dups once
    assert all(s == (False, False, True) for s in status.values()), status
    many = [f"$x{i}" for i in range(1200)] + ids[:1]  # more than one 500-ID chunk
    assert list(db.run_sync(lambda c: store.event_status(c, many))) == ids[:1]

    assert db.run_sync(lambda c: store.get_txn_response(c, "o.test", "t1")) is None
    response = {"pdus": {ids[0]: {}, "$bad": {"error": "Signature check failed: x"}}}
    db.run_sync(lambda c: store.save_txn_response(c, "o.test", "t1", response, 1000))
    assert db.run_sync(lambda c: store.get_txn_response(c, "o.test", "t1")) == response
    assert db.run_sync(lambda c: store.txn_response_and_event_status(c, "o.test", "t1", ids)) == (
        response,
        {},
    )
    stored, st = db.run_sync(lambda c: store.txn_response_and_event_status(c, "o.test", "t2", ids))
    assert stored is None and set(st) == set(ids)
    db.run_sync(lambda c: store.save_txn_response(c, "o.test", "t1", {"pdus": {}}, 2000))
    assert db.run_sync(lambda c: store.get_txn_response(c, "o.test", "t1")) == {"pdus": {}}
    db.run_sync(lambda c: store.forget_txn_response(c, "o.test", "t1"))
    assert db.run_sync(lambda c: store.get_txn_response(c, "o.test", "t1")) is None


def test_federation_store_sql_on_sqlite() -> None:
    _scenario(InlineDB())


@pytest.mark.postgres
def test_federation_store_sql_on_postgres(pg_url) -> None:  # noqa: F811 - the pytest fixture imported above
    _scenario(InlineDB(pg_url))
