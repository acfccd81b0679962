"""Reporting content: what the reporter sees (status, errcode, no existence leaks) and what
the school's directors see (a notice in the "Reports" room they are invited to)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support.db import InlineDB, run

import schema.accounts  # noqa: F401 - registers the tables
from node import metrics
from node.accounts import store as account_store
from node.rooms import reports as reports_mod
from node.rooms.api import report
from rooms_support import SERVER, Api, FakeAccounts, make_service, uid
from schema.client_misc import content_reports

ALICE, BOB, CAROL, DIRECTOR = uid("alice"), uid("bob"), uid("carol"), uid("dave")
NOTICES = f"@{reports_mod.NOTICES_LOCALPART}:{SERVER}"
V3 = "/_matrix/client/v3"


class Accounts(FakeAccounts):
    """Profiles for the rooms service plus what the reports need, on the users table."""

    server_name = SERVER

    def __init__(self, db) -> None:
        super().__init__()
        self.db = db
        for name, role in (
            ("alice", "pupil"),
            ("bob", "pupil"),
            ("carol", "teacher"),
            ("dave", "director"),
        ):
            run(
                db,
                account_store.insert_user,
                user_id=uid(name),
                localpart=name,
                role=role,
                displayname=name,
                password_hash="x",
                now_ms=1,
            )

    async def create_user(self, localpart, password, role, display_name=None):
        user_id = f"@{localpart}:{SERVER}"
        run(
            self.db,
            account_store.insert_user,
            user_id=user_id,
            localpart=localpart,
            role=role,
            displayname=display_name,
            password_hash=password,
            now_ms=1,
        )
        self.profiles[user_id] = {"displayname": display_name}
        return user_id


class World:
    def __init__(self) -> None:
        self.db = InlineDB()
        self.accounts = Accounts(self.db)
        self.rooms = make_service(self.db, accounts=self.accounts)
        self.api = Api(self.rooms)
        self.reports = report.register(self.api.router, self.rooms, self.accounts)
        self.room = self.api.call("POST", V3 + "/createRoom", ALICE, {"preset": "public_chat"})[1][
            "room_id"
        ]
        self.api.call("POST", V3 + f"/join/{self.room}", BOB, {})
        self.event = self.send(BOB, "you are all losers")

    def send(self, user, text):
        return self.api.call(
            "PUT",
            V3 + f"/rooms/{self.room}/send/m.room.message/t{text!r}",
            user,
            {"msgtype": "m.text", "body": text},
        )[1]["event_id"]

    def stored(self):
        return run(
            self.db, lambda c: [dict(r._mapping) for r in c.execute(select(content_reports))]
        )

    def notices(self):
        room_id = run(self.db, reports_mod._room_for, reports_mod.ROOM_PURPOSE)
        if room_id is None:
            return None, []
        status, body = self.api.call(
            "GET", V3 + f"/rooms/{room_id}/messages", NOTICES, query={"dir": "b", "limit": "50"}
        )
        texts = [e["content"]["body"] for e in body["chunk"] if e["type"] == "m.room.message"]
        return room_id, texts


@pytest.fixture
def world():
    return World()


def _reported(kind):
    return metrics.REPORTS.labels(kind=kind)._value.get()


def test_event_report_is_stored_and_reaches_the_directors(world):
    before = _reported("event")
    status = world.api.status(
        "POST",
        V3 + f"/rooms/{world.room}/report/{world.event}",
        ALICE,
        {"reason": "bullying", "score": -100},
    )
    assert status == (200, {})
    [row] = world.stored()
    assert (row["kind"], row["reporter"], row["room_id"], row["event_id"]) == (
        "event",
        ALICE,
        world.room,
        world.event,
    )
    assert (row["target_user_id"], row["reason"], row["score"]) == (BOB, "bullying", -100)
    assert _reported("event") == before + 1
    room_id, texts = world.notices()
    assert len(texts) == 1
    assert world.event in texts[0] and ALICE in texts[0] and "bullying" in texts[0]
    assert "you are all losers" in texts[0]
    reports_room = world.rooms.get_room  # the director is invited, the pupils are not
    from support.deferreds import result_of

    state = result_of(reports_room(room_id))
    assert state.membership(DIRECTOR) == "invite"
    assert state.membership(ALICE) is None and state.membership(CAROL) is None


def test_event_reports_404_alike_when_the_reporter_cannot_see(world):
    # Carol is not in the room; unknown events and rooms look the same to her and to Alice.
    cases = [
        (CAROL, world.room, world.event),
        (ALICE, world.room, "$unknown"),
        (ALICE, "!nowhere:school.test", world.event),
    ]
    other = world.api.call("POST", V3 + "/createRoom", CAROL, {})[1]["room_id"]
    cases.append((ALICE, other, world.event))  # an event of another room
    for user, room, event in cases:
        assert world.api.status(
            "POST", V3 + f"/rooms/{room}/report/{event}", user, {"reason": "x"}
        ) == (404, "M_NOT_FOUND")
    assert world.stored() == []
    assert world.notices() == (None, [])


def test_room_and_user_reports(world):
    before = (_reported("room"), _reported("user"))
    # Not joined to the room: allowed (spec: servers MUST NOT restrict room reports).
    assert world.api.status("POST", V3 + f"/rooms/{world.room}/report", CAROL, {"reason": ""}) == (
        200,
        {},
    )
    assert world.api.status(
        "POST", V3 + "/rooms/!nope:school.test/report", CAROL, {"reason": "x"}
    ) == (404, "M_NOT_FOUND")
    assert world.api.status("POST", V3 + f"/users/{BOB}/report", CAROL, {"reason": "spam"}) == (
        200,
        {},
    )
    assert world.api.status(
        "POST", V3 + "/users/@ghost:school.test/report", CAROL, {"reason": "x"}
    ) == (404, "M_NOT_FOUND")
    assert world.api.status(
        "POST", V3 + "/users/@someone:elsewhere.test/report", CAROL, {"reason": "x"}
    ) == (200, {})
    kinds = [(r["kind"], r["room_id"], r["target_user_id"]) for r in world.stored()]
    assert kinds == [
        ("room", world.room, None),
        ("user", None, BOB),
        ("user", None, "@someone:elsewhere.test"),
    ]
    assert (_reported("room"), _reported("user")) == (before[0] + 1, before[1] + 2)
    assert len(world.notices()[1]) == 3


@pytest.mark.parametrize(
    "path_kind, body, expected",
    [
        ("room", {}, (400, "M_MISSING_PARAM")),
        ("user", {}, (400, "M_MISSING_PARAM")),
        ("room", {"reason": 5}, (400, "M_BAD_JSON")),
        ("room", {"reason": "x" * 5000}, (400, "M_INVALID_PARAM")),
        ("event", {"score": -101}, (400, "M_BAD_JSON")),
        ("event", {"score": "bad"}, (400, "M_BAD_JSON")),
        ("event", b"not json", (400, "M_NOT_JSON")),
    ],
)
def test_bad_bodies(world, path_kind, body, expected):
    path = {
        "room": V3 + f"/rooms/{world.room}/report",
        "user": V3 + f"/users/{BOB}/report",
        "event": V3 + f"/rooms/{world.room}/report/{world.event}",
    }[path_kind]
    assert world.api.status("POST", path, ALICE, body) == expected
    assert world.stored() == []


def test_reports_are_rate_limited_per_reporter(world):
    path = V3 + f"/users/{BOB}/report"
    for _ in range(reports_mod.REPORTS_BURST):
        assert world.api.status("POST", path, ALICE, {"reason": "x"}) == (200, {})
    assert world.api.status("POST", path, ALICE, {"reason": "x"}) == (429, "M_LIMIT_EXCEEDED")
    assert world.api.status("POST", path, CAROL, {"reason": "x"}) == (200, {})


def test_one_reports_room_and_new_directors_are_invited(world):
    world.api.call("POST", V3 + f"/users/{BOB}/report", ALICE, {"reason": "a"})
    first, _ = world.notices()
    run(
        world.db,
        account_store.insert_user,
        user_id=uid("erin"),
        localpart="erin",
        role="director",
        displayname="erin",
        password_hash="x",
        now_ms=1,
    )
    world.accounts.profiles[uid("erin")] = {"displayname": "Erin"}
    world.api.call("POST", V3 + f"/users/{BOB}/report", ALICE, {"reason": "b"})
    again, texts = world.notices()
    assert again == first and len(texts) == 2
    from support.deferreds import result_of

    assert result_of(world.rooms.get_room(first)).membership(uid("erin")) == "invite"


def test_a_taken_notices_localpart_is_never_used(world):
    run(
        world.db,
        account_store.insert_user,
        user_id=NOTICES,
        localpart=reports_mod.NOTICES_LOCALPART,
        role="pupil",
        displayname="impostor",
        password_hash="argon2-hash",
        now_ms=1,
    )
    world.accounts.profiles[NOTICES] = {"displayname": "impostor"}
    assert world.api.status("POST", V3 + f"/users/{BOB}/report", ALICE, {"reason": "x"}) == (
        200,
        {},
    )
    assert len(world.stored()) == 1  # the report is kept ...
    assert world.notices() == (None, [])  # ... but no room is made for the impostor
