"""``node.federation.store.event_status`` (raw SQL on the DB-API cursor, 500 IDs a query)
answers exactly as the SQLAlchemy Core version it replaced, on SQLite: stored events,
outliers, rejected events, events with and without state groups, unknown IDs, more than
one chunk of IDs, duplicates in the input.

The reference below restates the replaced query (events joined, in Python, with the IDs
that have an ``event_state_groups`` row)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from support.db import InlineDB

import schema.federation  # noqa: F401 - registers the tables
from node.federation import store
from schema.events import events
from schema.federation import event_state_groups

ROOM = "!room:a.test"


def reference_status(conn, event_ids):
    out = {}
    ids = list(event_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        grouped = {
            r.event_id
            for r in conn.execute(
                select(event_state_groups.c.event_id).where(
                    event_state_groups.c.event_id.in_(chunk)
                )
            )
        }
        for r in conn.execute(
            select(events.c.event_id, events.c.outlier, events.c.rejected_reason).where(
                events.c.event_id.in_(chunk)
            )
        ):
            out[r.event_id] = (
                bool(r.outlier),
                r.rejected_reason is not None,
                r.event_id in grouped,
            )
    return out


def _event_row(so, eid, *, outlier=False, rejected=None):
    return {
        "stream_ordering": so,
        "event_id": eid,
        "room_id": ROOM,
        "type": "m.room.message",
        "state_key": None,
        "sender": "@u:a.test",
        "depth": so,
        "origin_server_ts": so,
        "json": "{}",
        "rejected_reason": rejected,
        "outlier": outlier,
    }


# Every combination of (outlier, rejected, has groups), several events of each, plus an
# event_state_groups row for an event that is not stored (it must not appear).
KINDS = [(o, r, g) for o in (False, True) for r in (False, True) for g in (False, True)]
PER_KIND = 80  # 640 stored events: more than one 500-ID chunk


def _populate(db: InlineDB) -> dict[str, tuple[bool, bool, bool]]:
    expected = {}
    rows, groups = [], []
    so = 0
    for o, r, g in KINDS:
        for _ in range(PER_KIND):
            so += 1
            eid = f"$e{so}-{int(o)}{int(r)}{int(g)}"
            rows.append(_event_row(so, eid, outlier=o, rejected="bad auth" if r else None))
            if g:
                groups.append(
                    {"event_id": eid, "room_id": ROOM, "before_group": so, "after_group": so + 1}
                )
            expected[eid] = (o, r, g)
    groups.append(
        {"event_id": "$only-grouped", "room_id": ROOM, "before_group": 1, "after_group": 1}
    )
    # An empty rejection reason is still a rejection (IS NOT NULL).
    so += 1
    rows.append(_event_row(so, "$empty-reason", rejected=""))
    expected["$empty-reason"] = (False, True, False)

    def write(conn):
        conn.execute(insert(events), rows)
        conn.execute(insert(event_state_groups), groups)

    db.run_sync(write)
    return expected


_DB: list = []


def _db():
    if not _DB:
        db = InlineDB()
        _DB.append((db, _populate(db)))
    return _DB[0]


def _both(db, ids):
    new = db.run_sync(lambda c: store.event_status(c, ids))
    ref = db.run_sync(lambda c: reference_status(c, ids))
    return new, ref


def test_each_kind_of_event_has_its_status():
    db, expected = _db()
    ids = list(expected)
    new, ref = _both(db, ids)
    assert new == ref == expected
    # the values are real booleans, as before
    assert all(type(x) is bool for v in new.values() for x in v)


def test_unknown_ids_are_absent():
    db, expected = _db()
    some = list(expected)[:3]
    new, ref = _both(db, ["$nope", *some, "$only-grouped", "", "$nope2"])
    assert new == ref == {e: expected[e] for e in some}
    assert db.run_sync(lambda c: store.event_status(c, [])) == {}
    assert db.run_sync(lambda c: store.event_status(c, ["$a", "$b"])) == {}


def test_more_than_one_chunk_and_duplicates():
    db, expected = _db()
    ids = list(expected)
    # 1200 unknown IDs first, then every stored one twice, interleaved with duplicates
    # that straddle the 500-ID chunk boundaries.
    many = [f"$x{i}" for i in range(1200)] + ids + ids[::-1] + ids[:600]
    assert len(many) > 2500
    new, ref = _both(db, many)
    assert new == ref == expected


def test_exactly_500_and_501_ids():
    db, expected = _db()
    ids = list(expected)
    for n in (499, 500, 501, 1000, 1001):
        new, ref = _both(
            db, ids[:n] if n <= len(ids) else ids + [f"$pad{i}" for i in range(n - len(ids))]
        )
        assert new == ref
        assert len(new) == min(n, len(ids))


def test_a_generator_of_ids_is_read_once():
    db, expected = _db()
    ids = list(expected)[:10]
    new = db.run_sync(lambda c: store.event_status(c, (e for e in ids)))
    assert new == {e: expected[e] for e in ids}


def test_sees_rows_written_earlier_in_the_same_transaction():
    """``event_status`` runs on the DB-API cursor of the SQLAlchemy connection: inside a
    transaction that just inserted an event (e.g. the persister's batch), it sees it."""
    db = InlineDB()

    def in_one_txn(conn):
        conn.execute(insert(events), [_event_row(1, "$fresh", outlier=True)])
        conn.execute(
            insert(event_state_groups),
            [{"event_id": "$fresh", "room_id": ROOM, "before_group": 1, "after_group": 1}],
        )
        return store.event_status(conn, ["$fresh"])

    assert db.run_sync(in_one_txn) == {"$fresh": (True, False, True)}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 700), st.text(min_size=0, max_size=6)), max_size=1200))
def test_any_list_of_ids_matches_the_reference(picks):
    db, expected = _db()
    stored = list(expected)
    ids = [
        stored[p % len(stored)] if isinstance(p, int) and p < len(stored) + 20 else f"${p}"
        for p in picks
    ]
    new, ref = _both(db, ids)
    assert new == ref
