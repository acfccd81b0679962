"""The city room directory in process: what is kept of a school's answers, gathering
(paged publicRooms, stats, errors, the last good data kept, periodic rounds on a fake
clock, shared rounds, revoked schools forgotten), the combined and searchable directory
(client publicRooms GET/POST with and without server=, the dashboard JSON, on-demand
refresh for the office), and the dashboard pages that show it."""

from __future__ import annotations

import pytest
from support.deferreds import result_of
from twisted.internet import task

from city_support import CityHarness, room
from federation.errors import InvalidParam
from gateway.directory.gatherer import clean_room, clean_stats
from gateway.directory.rooms import combine, filter_rooms, page

A, B, C = "school42.example", "school17.example", "ministry.example"


@pytest.fixture
def city():
    h = CityHarness()
    h.add_school(A, "42", "Lyceum No. 42", "North")
    h.add_school(B, "17", "Gymnasium No. 17", "South")
    h.fed.rooms[A] = [room(f"!a{i:03d}:x", f"Club {i}", members=i % 7) for i in range(150)]
    h.fed.rooms[A].append(room("!chess:x", "Chess club", 30, topic="Fridays after school"))
    h.fed.rooms[B] = [room("!b1:x", "Robotics", 12, canonical_alias="#robotics:" + B)]
    h.fed.stats[A] = {
        "users": 420,
        "rooms": 160,
        "public_rooms": 151,
        "directors": ["@director:" + A],
        "staff": [],
    }
    return h


def gather(h):
    return result_of(_wait(h.gatherer.gather_all()))


async def _wait(d):
    return await d


# --- what is kept of an answer ---------------------------------------------------------------
def test_clean_room_keeps_known_fields_of_the_right_type():
    raw = {
        "room_id": "!r:x",
        "name": "N" * 5000,
        "topic": 7,
        "num_joined_members": "9",
        "world_readable": "yes",
        "guest_can_join": True,
        "join_rule": "public",
        "canonical_alias": "#r:x",
        "evil": "<script>",
        "room_type": "m.space",
    }
    out = clean_room(raw)
    assert out == {
        "room_id": "!r:x",
        "name": "N" * 1000,
        "canonical_alias": "#r:x",
        "join_rule": "public",
        "room_type": "m.space",
        "num_joined_members": 0,
        "world_readable": False,
        "guest_can_join": True,
    }
    assert clean_room({"name": "no id"}) is None
    assert clean_room({"room_id": "not-a-room"}) is None
    assert clean_room(["!r:x"]) is None


def test_clean_stats_keeps_only_directors_of_the_school_itself():
    out = clean_stats(
        {
            "users": 10,
            "rooms": -1,
            "public_rooms": True,
            "reports": 4,
            "directors": ["@d:" + A, "@d:" + B, "@d:" + A, "nobody", 5, "@x:" + A + ".evil"],
        },
        A,
    )
    assert out == {
        "users": 10,
        "rooms": None,
        "public_rooms": None,
        "reports": 4,
        "directors": ["@d:" + A],
        "staff": [],
    }
    assert clean_stats("nope", A) is None
    assert clean_stats({"directors": "@d:" + A}, A)["directors"] == []


# --- gathering -------------------------------------------------------------------------------
def test_gathering_pages_through_every_school_and_records_when(city):
    cache = gather(city)
    assert set(cache) == {A, B}  # never the gateway itself
    a = cache[A]
    assert len(a.rooms) == 151 and a.rooms_ts == city.now() and a.error is None
    assert city.fed.count(A, "publicRooms") == 2  # 100 + 51: followed next_batch
    assert a.stats == {
        "users": 420,
        "rooms": 160,
        "public_rooms": 151,
        "reports": None,  # a school that does not publish the count yet
        "directors": ["@director:" + A],
        "staff": [],
    }
    b = cache[B]
    assert [r["name"] for r in b.rooms] == ["Robotics"]
    assert b.stats is None and b.error is None  # no stats endpoint: not an error
    assert result_of(city.gatherer.public_rooms(B))[0]["room_id"] == "!b1:x"
    assert result_of(city.gatherer.public_rooms(C)) is None


def test_an_unreachable_school_keeps_its_last_good_rooms_and_reports_the_error(city):
    gather(city)
    t1 = city.now()
    city.advance(60)
    city.fed.down.add(A)
    a = gather(city)[A]
    assert len(a.rooms) == 151 and a.rooms_ts == t1  # last good data, with its time
    assert "DestinationUnreachable" in a.error and a.error_ts == city.now()
    city.fed.down.clear()
    city.advance(60)
    a = gather(city)[A]
    assert a.error is None and a.rooms_ts == city.now()


def test_a_school_never_reached_has_no_rooms_rather_than_an_empty_list(city):
    city.fed.down.add(B)
    b = gather(city)[B]
    assert b.rooms is None and b.error.startswith("publicRooms:")


def test_rounds_run_periodically_on_the_injected_clock(city):
    clock = task.Clock()
    city.gatherer.interval_s = 300
    city.gatherer.start(clock)
    assert city.gatherer.rounds == 1  # at start
    clock.advance(299)
    assert city.gatherer.rounds == 1
    clock.advance(1)
    assert city.gatherer.rounds == 2
    city.gatherer.stop()
    clock.advance(3000)
    assert city.gatherer.rounds == 2


def test_concurrent_requests_share_one_round(city):
    city.fed.hold = True
    d1 = city.gatherer.gather_all()
    d2 = city.gatherer.gather_all()
    d3 = city.gatherer.gather(A)
    assert not d1.called and not d2.called
    city.fed.release()
    city.fed.release()  # stats after the rooms
    city.fed.release()  # second page of A
    city.fed.release()
    assert d1.called and d2.called and d3.called
    assert city.fed.count(A, "publicRooms") == 2 and city.fed.count(A, "stats") == 1
    assert city.gatherer.rounds == 1


def test_revoked_schools_are_forgotten_at_the_next_round(city):
    gather(city)
    result_of(city.roster.revoke("17"))
    assert set(gather(city)) == {A}
    assert result_of(city.gatherer.public_rooms(B)) is None


def test_stats_listeners_hear_every_answer_and_cannot_break_gathering(city):
    heard = []

    async def listener(server, stats):
        heard.append((server, stats["users"]))
        raise RuntimeError("listener bug")

    city.gatherer.on_stats.append(listener)
    cache = gather(city)
    assert heard == [(A, 420)] and cache[A].error is None


# --- combining -------------------------------------------------------------------------------
def test_combine_lists_a_shared_room_once_and_sorts_by_members():
    pairs = combine(
        [
            (A, [room("!x:x", "Shared", 3), room("!y:x", "Big", 50)]),
            (B, [room("!x:x", "Shared", 9), room("!z:x", "Small", 1)]),
        ]
    )
    assert [(s, r["room_id"], r["num_joined_members"]) for s, r in pairs] == [
        (A, "!y:x", 50),
        (B, "!x:x", 9),
        (B, "!z:x", 1),
    ]


def test_filter_and_page():
    pairs = [
        (A, room("!a:x", "Chess club", 5, topic="Fridays")),
        (B, room("!b:x", "Space", 2, room_type="m.space")),
        (B, room("!c:x", "Choir", 1)),
    ]
    assert [r["room_id"] for _, r in filter_rooms(pairs, term="FRIDAYS chess")] == ["!a:x"]
    assert [r["room_id"] for _, r in filter_rooms(pairs, room_types=[None])] == ["!a:x", "!c:x"]
    assert [
        r["room_id"]
        for _, r in filter_rooms(pairs, term="gymnasium", school_names={B: "Gymnasium No. 17"})
    ] == ["!b:x", "!c:x"]
    rooms = [r for _, r in pairs]
    first = page(rooms, limit=2, since=None)
    assert [r["room_id"] for r in first["chunk"]] == ["!a:x", "!b:x"]
    assert first["next_batch"] == "o2" and "prev_batch" not in first
    second = page(rooms, limit=2, since=first["next_batch"])
    assert [r["room_id"] for r in second["chunk"]] == ["!c:x"]
    assert second["prev_batch"] == "o0" and "next_batch" not in second
    assert second["total_room_count_estimate"] == 3
    with pytest.raises(InvalidParam):
        page(rooms, limit=2, since="x5")


# --- the client API --------------------------------------------------------------------------
def test_client_public_rooms_lists_the_whole_city(city):
    gather(city)
    r = city.request("GET", "/_matrix/client/v3/publicRooms?limit=3")
    assert r.status == 200
    assert [c["name"] for c in r.body["chunk"]] == ["City announcements", "Chess club", "Robotics"]
    assert r.body["total_room_count_estimate"] == 153 and r.body["next_batch"] == "o3"
    same = city.request("GET", "/_matrix/client/v3/publicRooms?limit=3&server=city.example")
    assert same.body == r.body


def test_client_public_rooms_search_with_post(city):
    gather(city)
    r = city.request(
        "POST",
        "/_matrix/client/v3/publicRooms",
        token="tok-teacher",
        json_body={"filter": {"generic_search_term": "robot"}},
    )
    assert r.status == 200 and [c["room_id"] for c in r.body["chunk"]] == ["!b1:x"]
    r = city.request(
        "POST",
        "/_matrix/client/v3/publicRooms",
        token="tok-teacher",
        json_body={"filter": {"generic_search_term": 5}},
    )
    assert (r.status, r.body["errcode"]) == (400, "M_BAD_JSON")
    r = city.request("POST", "/_matrix/client/v3/publicRooms", json_body={})
    assert r.status == 401


def test_client_public_rooms_of_one_school_gathers_on_demand(city):
    r = city.request("GET", f"/_matrix/client/v3/publicRooms?server={B}")
    assert r.status == 200 and [c["name"] for c in r.body["chunk"]] == ["Robotics"]
    assert city.fed.count(B, "publicRooms") == 1  # never gathered: asked now
    city.request("GET", f"/_matrix/client/v3/publicRooms?server={B}")
    assert city.fed.count(B, "publicRooms") == 1  # then served from the cache


def test_client_public_rooms_refuses_servers_outside_the_roster_and_reports_outages(city):
    r = city.request("GET", "/_matrix/client/v3/publicRooms?server=rogue.example")
    assert (r.status, r.body["errcode"]) == (400, "M_UNRECOGNIZED")
    assert "not in the city roster" in r.body["error"]
    assert city.fed.calls == []  # no request to a non-member
    city.fed.down.add(B)
    r = city.request("GET", f"/_matrix/client/v3/publicRooms?server={B}")
    assert r.status == 502 and "could not be reached" in r.body["error"]


# --- the dashboard JSON and refresh ----------------------------------------------------------
def test_dashboard_json_searches_rooms_and_school_names(city):
    gather(city)
    r = city.request("GET", "/_parta/v1/directory/rooms?q=gymnasium")
    assert r.status == 200 and r.body["total"] == 1
    (only,) = r.body["rooms"]
    assert only["room_id"] == "!b1:x" and only["school"] == "Gymnasium No. 17"
    assert only["school_id"] == "17" and only["district"] == "South"
    assert only["server"] == B and only["gathered_ts"] == city.now()
    assert r.body["schools"][A]["gathered_ts"] == city.now()
    r = city.request("GET", "/_parta/v1/directory/rooms?q=chess")
    assert [x["name"] for x in r.body["rooms"]] == ["Chess club"]
    r = city.request("GET", "/_parta/v1/directory/rooms?q=" + "x" * 101)
    assert r.status == 400


def test_refresh_is_for_the_office_and_gathers_now(city):
    assert city.request("POST", "/_parta/v1/directory/refresh", json_body={}).status == 403
    r = city.request("POST", "/_parta/v1/directory/refresh", json_body={}, token="tok-teacher")
    assert r.status == 403 and city.fed.calls == []
    r = city.request(
        "POST", "/_parta/v1/directory/refresh", json_body={"server": A}, token="tok-office"
    )
    assert r.status == 200 and list(r.body["gathered"]) == [A]
    assert r.body["gathered"][A]["rooms"] == 151 and r.body["gathered"][A]["stats"]["users"] == 420
    r = city.request("POST", "/_parta/v1/directory/refresh", json_body={}, token="tok-office")
    assert r.status == 200 and set(r.body["gathered"]) == {A, B}
    r = city.request(
        "POST",
        "/_parta/v1/directory/refresh",
        json_body={"server": "x.example"},
        token="tok-office",
    )
    assert r.status == 400


# --- dashboard pages -------------------------------------------------------------------------
def test_dashboard_school_page_and_directory_search_show_gathered_rooms(city):
    assert city.login().status == 303
    page_a = city.request("GET", "/dashboard/schools/17").body
    assert "Not gathered yet" in page_a
    gather(city)
    page_b = city.request("GET", "/dashboard/schools/17").body
    assert "Robotics" in page_b and "#robotics:" + B in page_b
    found = city.request("GET", "/dashboard/directory?q=chess").body
    assert "Chess club" in found and "Lyceum No. 42" in found and "1 room(s)" in found
    none = city.request("GET", "/dashboard/directory?q=nothing-like-this").body
    assert "No public room matches" in none
