"""The rooms store on PostgreSQL: one scenario touching every query and the batch writer
(the raw DB-API fast path included).  Uses ``PARTA_TEST_PG_URL`` or starts a throwaway
cluster with the e2e suite's helper; skipped when PostgreSQL is not installed."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

import pytest
from support.db import InlineDB
from support.deferreds import result_of

from rooms_support import Api, make_service, uid

pytestmark = pytest.mark.postgres

ALICE, BOB = uid("alice"), uid("bob")
V3 = "/_matrix/client/v3"


def _e2e_conftest():
    e2e_dir = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
    if e2e_dir not in sys.path:
        sys.path.append(e2e_dir)  # the conftest imports its e2e_helpers
    path = os.path.join(e2e_dir, "conftest.py")
    spec = importlib.util.spec_from_file_location("parta_e2e_conftest", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pg_url():
    helpers = _e2e_conftest()
    url = os.environ.get("PARTA_TEST_PG_URL")
    stop = None
    if url:
        base, _, admin = url.rstrip("/").rpartition("/")
        server = helpers.PgServer(base, admin_db=admin or "postgres")
    else:
        try:
            server, stop = helpers._start_cluster(tempfile.mkdtemp(prefix="parta-pg-"))
        except Exception as exc:  # noqa: BLE001 - whatever stops the server: skip, or fail in CI
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required in CI: {exc}")
            pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server.new_database()
    finally:
        if stop is not None:
            stop()


def test_rooms_store_on_postgres(pg_url):
    db = InlineDB(pg_url)
    svc = make_service(db)
    api = Api(svc)
    room = api.call(
        "POST",
        V3 + "/createRoom",
        ALICE,
        {"preset": "public_chat", "room_alias_name": "pg", "visibility": "public", "name": "PG"},
    )[1]["room_id"]
    other = api.call("POST", V3 + "/createRoom", ALICE, {})[1]["room_id"]
    api.call("POST", f"{V3}/join/%23pg:school.test", BOB, {})
    e1 = api.call("PUT", f"{V3}/rooms/{room}/send/m.room.message/t1", BOB, {"body": "1"})[1]
    assert api.call("PUT", f"{V3}/rooms/{room}/send/m.room.message/t1", BOB, {"body": "1"})[1] == e1
    # the same txn ID in another room is another request (insert-ignore on the txn row)
    e2 = api.call("PUT", f"{V3}/rooms/{other}/send/m.room.message/t1", ALICE, {"body": "x"})[1]
    e3 = api.call("PUT", f"{V3}/rooms/{room}/send/m.room.message/t1", ALICE, {"body": "y"})[1]
    assert e3 != e2
    api.call("PUT", f"{V3}/rooms/{room}/redact/{e1['event_id']}/r1", ALICE, {})
    api.call("POST", f"{V3}/rooms/{room}/leave", BOB, {})
    api.call("POST", f"{V3}/rooms/{room}/forget", BOB, {})
    assert result_of(svc.forgotten_room_ids(BOB)) == {room}
    api.call("PUT", f"{V3}/rooms/{room}/state/m.room.name", ALICE, {"name": "PG2"})

    # a restarted service reads everything back from PostgreSQL
    svc2 = make_service(db)
    api2 = Api(svc2)
    assert svc2.current_stream_ordering() == svc.current_stream_ordering()
    assert result_of(svc2.get_room(room)).content("m.room.name") == {"name": "PG2"}
    assert api2.call("GET", f"{V3}/rooms/{room}/state/m.room.name", BOB) == (200, {"name": "PG"})
    page = api2.call(
        "GET", f"{V3}/rooms/{room}/messages", ALICE, query={"dir": "b", "limit": "50"}
    )[1]
    redacted = [e for e in page["chunk"] if e["event_id"] == e1["event_id"]][0]
    assert redacted["content"] == {} and "redacted_because" in redacted["unsigned"]
    assert [c["room_id"] for c in api2.call("GET", V3 + "/publicRooms")[1]["chunk"]] == [room]
    assert api2.call("GET", f"{V3}/directory/room/%23pg:school.test")[1]["room_id"] == room
    eid = api2.call(
        "PUT", f"{V3}/rooms/{room}/send/m.room.message/t9", ALICE, {"body": "after restart"}
    )[1]["event_id"]
    assert (
        result_of(svc2.get_event(eid)).prev_event_ids == result_of(svc.get_room(room)).extremities
    )
    changes = result_of(svc2.user_memberships_changed(BOB, 0))
    assert [(r, m) for r, m, _ in changes] == [(room, "leave")]
    db.engine.dispose()
