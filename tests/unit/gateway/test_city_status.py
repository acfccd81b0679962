"""School status for the dashboard (``gateway.status``): last federation contact from
inbound requests, delivered transactions, roster acknowledgements and gathering; outbound
queue depth from the federation outbound queue; the acknowledged roster version; the
users/rooms counts a school publishes -- and the schools page that shows them.  Also the
school side: ``/_parta/v1/stats`` counts and who may read them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import insert
from support.clocks import fake_clock
from support.db import InlineDB
from support.deferreds import result_of

import schema.accounts  # registers the tables
import schema.client_misc
import schema.events
import schema.federation_outbound as fo
from city_support import CityHarness
from federation.errors import Forbidden
from gateway.roster_enforcement import RosterAcks
from gateway.sources import SchoolStatus
from gateway.status import CityStatusSource, ContactTracker
from node.federation.server import stats as stats_endpoint

A, B, C = "school42.example", "school17.example", "school3.example"


def queue_rows(db):
    def fill(conn):
        conn.execute(
            insert(fo.federation_outbound_pdus),
            [{"destination": A, "stream_ordering": i, "event_id": f"$e{i}"} for i in range(3)],
        )
        conn.execute(
            insert(fo.federation_outbound_edus),
            [
                {"destination": A, "edu_type": "m.typing", "content": "{}"},
                {"destination": C, "edu_type": "m.receipt", "content": "{}"},
            ],
        )
        conn.execute(
            insert(fo.federation_destinations),
            [
                {
                    "destination": A,
                    "txn_counter": 5,
                    "failures": 2,
                    "retry_interval_ms": 4000,
                    "next_retry_ts": 0,
                    "last_success_ts": 1000,
                },
                {
                    "destination": B,
                    "txn_counter": 9,
                    "failures": 0,
                    "retry_interval_ms": 0,
                    "next_retry_ts": 0,
                    "last_success_ts": 5000,
                },
            ],
        )

    db.run_sync(fill)


def test_each_column_comes_from_its_source():
    db = InlineDB()
    queue_rows(db)
    clock = fake_clock(10_000)
    contacts = ContactTracker(clock)
    contacts(A)  # an inbound request from A at 10 000
    acks = RosterAcks(None, clock)
    acks.record(A, 7, ts=9_000)
    acks.record(C, 6, ts=20_000)
    gatherer = SimpleNamespace(
        get=lambda s: (
            SimpleNamespace(
                stats={"users": 420, "rooms": 31, "reports": 2}, rooms_ts=8_000, stats_ts=8_500
            )
            if s == A
            else None
        )
    )
    source = CityStatusSource(db=db, contacts=contacts, acks=acks, gatherer=gatherer)
    got = result_of(source.status_of([A, B, C, "never.example"]))
    assert got[A] == SchoolStatus(
        last_contact_ts=10_000,
        outbound_queue_depth=4,
        roster_version_acked=7,
        user_count=420,
        room_count=31,
        report_count=2,
    )
    assert got[B] == SchoolStatus(last_contact_ts=5_000, outbound_queue_depth=0)
    assert got[C] == SchoolStatus(
        last_contact_ts=20_000, outbound_queue_depth=1, roster_version_acked=6
    )
    assert got["never.example"] == SchoolStatus(outbound_queue_depth=0)


def test_without_sources_nothing_is_made_up():
    source = CityStatusSource()
    assert result_of(source.status_of([A])) == {}


def test_the_gateway_reports_nothing_about_itself():
    db = InlineDB()
    source = CityStatusSource(db=db, own_server="city.example")
    assert set(result_of(source.status_of(["city.example", A]))) == {A}


def test_schools_page_shows_the_status_columns():
    h = CityHarness()
    h.add_school(A, "42", "Lyceum No. 42", "North")
    h.add_school(B, "17", "Gymnasium No. 17", "South")
    db = InlineDB()
    queue_rows(db)
    h.fed.stats[A] = {"users": 420, "rooms": 31, "public_rooms": 2, "directors": []}
    acks = RosterAcks(None, h.clock)
    acks.record(A, 3)
    h.gw.status_source = CityStatusSource(
        db=db, contacts=ContactTracker(h.clock), acks=acks, gatherer=h.gatherer
    )
    result_of(_wait(h.gatherer.gather_all()))
    h.login()
    page = h.request("GET", "/dashboard/").body
    row_a = page[page.index("Lyceum No. 42") :]
    row_a = row_a[: row_a.index("</tr>")]
    cells = [c.split(">")[-1] for c in row_a.split("</td>")]
    assert ["4", "3", "420", "31"] == [c for c in cells if c.isdigit()][-4:]
    detail = h.request("GET", "/dashboard/schools/42").body
    assert "420 / 31" in detail


async def _wait(d):
    return await d


# --- the school side: /_parta/v1/stats ------------------------------------------------------
def school_db():
    db = InlineDB()

    def fill(conn):
        conn.execute(
            insert(schema.accounts.users),
            [
                {
                    "user_id": f"@{lp}:{A}",
                    "localpart": lp,
                    "role": role,
                    "created_ts": 1,
                    "deactivated": gone,
                }
                for lp, role, gone in [
                    ("director", "director", False),
                    ("old", "director", True),
                    ("ana", "teacher", False),
                    ("cara", "pupil", False),
                ]
            ],
        )
        conn.execute(
            insert(schema.events.rooms),
            [
                {
                    "room_id": f"!r{i}:x",
                    "room_version": "12",
                    "creator": creator,
                    "is_public": public,
                    "created_ts": 1,
                }
                for i, (creator, public) in enumerate(
                    [
                        (f"@ana:{A}", True),
                        (f"@director:{A}", False),
                        (f"@x:{B}", True),  # a remote room we joined
                        ("@y:school42_example", False),
                    ]
                )
            ],
        )  # LIKE wildcards do not match

        conn.execute(
            insert(schema.client_misc.content_reports),
            [
                {"kind": kind, "reporter": f"@cara:{A}", "received_ts": 1, **target}
                for kind, target in [
                    ("user", {"target_user_id": f"@x:{B}", "room_id": None}),
                    ("room", {"target_user_id": None, "room_id": "!r2:x"}),
                ]
            ],
        )

    db.run_sync(fill)
    return db


def test_stats_count_active_users_local_rooms_reports_and_list_directors():
    got = school_db().run_sync(lambda conn: stats_endpoint.collect_stats(conn, A))
    assert got == {
        "users": 3,
        "rooms": 2,
        "public_rooms": 1,
        "reports": 2,
        "directors": [f"@director:{A}"],
    }


class _Routes:
    def __init__(self):
        self.handlers = {}

    def add(self, method, path, handler):
        self.handlers[(method, path)] = handler


@pytest.mark.parametrize(
    "signer, origin, allowed",
    [
        ("city.example", "city.example", True),
        ("city.example", B, False),  # another school
        (None, "city.example", False),  # not enrolled: nobody
    ],
)
def test_only_the_roster_signer_may_read_stats(signer, origin, allowed):
    policy = SimpleNamespace(state=SimpleNamespace(signer_name=signer) if signer else None)
    fctx = SimpleNamespace(
        policy=policy, server_name=A, ctx=SimpleNamespace(db=school_db()), accounts=None
    )
    routes = _Routes()
    stats_endpoint.register(routes, fctx)
    handler = routes.handlers[("GET", "/_parta/v1/stats")]
    if allowed:
        status, body = result_of(handler(None, origin))
        assert status == 200 and body["users"] == 3
    else:
        with pytest.raises(Forbidden):
            result_of(handler(None, origin))
