"""Applying an import in-process: accounts, the school's rooms and who is in them, a
re-import that moves and removes pupils, and the first sign-in with a claim code (what
clients see: room membership, power levels, /login, ``POST /_parta/v1/claim`` answers)."""

from __future__ import annotations

import re

import pytest
from support.deferreds import result_of

import schema.events  # noqa: F401 - registers the tables
import schema.people  # noqa: F401 - registers the tables
import schema.rooms  # noqa: F401 - registers the tables
from people_support import (  # first: puts the node harnesses on the path
    edit,
    hold_clock,
    sample_copy,
)

from accounts_support import Node  # isort: skip
from node.people import admin, store
from node.people.api import claim as claim_api
from node.people.room_sync import PeopleRoomSync, read_wanted

from rooms_support import make_service  # isort: skip

SERVER = "school.test"
CLAIM = "/_parta/v1/claim"


class School:
    """Real accounts (HTTP in-process) and a real rooms service on one database."""

    def __init__(self, monkeypatch) -> None:
        self.node = Node(monkeypatch)
        self.db = self.node.db
        claim_api.register(self.node.router, self.node.accounts)
        self.rooms = make_service(self.db, clock=hold_clock())
        self.sync = PeopleRoomSync(self.db, self.rooms, SERVER)
        self.now = 1_700_000_000_000

    def import_(self, export, dry_run=False):
        self.now += 1000
        return self.db.run_sync(
            lambda conn: admin.run_import(
                conn, str(export), server_name=SERVER, now_ms=self.now, dry_run=dry_run
            )
        )

    def rooms_sync(self) -> bool:
        return result_of(self.sync.run_once())

    def uid(self, sourced_id: str) -> str:
        return self.db.run_sync(store.user_ids)[sourced_id]

    def wanted(self):
        return self.db.run_sync(read_wanted)

    def room_of(self, kind: str, cls: str | None = None) -> str:
        w = self.wanted()
        if cls is None:
            return w.school_rooms[kind]
        title, _active, class_room, parents_room = w.classes[cls]
        return class_room if kind == "class" else parents_room

    def membership(self, room_id: str, sourced_id: str) -> str | None:
        room = result_of(self.rooms.get_room(room_id))
        return room.membership(self.uid(sourced_id))

    def joined(self, room_id: str, membership: str = "join") -> set[str]:
        room = result_of(self.rooms.get_room(room_id))
        by_uid = {v: k for k, v in self.db.run_sync(store.user_ids).items()}
        joined = {u for u, ev in room.members() if ev.content["membership"] == membership}
        return {by_uid[u] for u in joined if u in by_uid}

    def invited(self, room_id: str) -> set[str]:
        return self.joined(room_id, "invite")


@pytest.fixture
def school(monkeypatch, tmp_path):
    s = School(monkeypatch)
    s.export = sample_copy(tmp_path)
    return s


def test_dry_run_changes_nothing(school):
    result = school.import_(school.export, dry_run=True)
    assert len(result.plan.create) == 9
    assert school.db.run_sync(store.user_ids) == {}
    assert school.rooms_sync() is False  # nothing recorded, nothing to do


def test_import_makes_accounts_without_passwords_and_opaque_ids(school):
    result = school.import_(school.export)
    assert len(result.created) == 9
    for sid, user_id in result.created.items():
        localpart = user_id[1 : user_id.index(":")]
        assert re.fullmatch(r"p[a-z2-7]{16}", localpart), user_id  # random, not a name
        assert sid not in user_id
    assert len(set(result.created.values())) == 9
    pupil = result.created["pupil-1"]
    assert school.node.login(pupil, "anything")[0] == 403  # no password until claimed
    profile = school.node.run(school.node.accounts.get_profile(pupil))
    assert profile["displayname"] == "Sasha Kuznetsov"
    assert school.node.run(school.node.accounts.get_role(pupil)) == "pupil"
    assert school.import_(school.export).plan.is_empty()  # idempotent


def test_rooms_follow_the_record(school):
    school.import_(school.export)
    assert school.rooms_sync() is True
    assert school.rooms_sync() is False  # same generation: nothing to do
    space = school.room_of("space")
    assert school.invited(space) == {
        "staff-director", "staff-t1", "staff-t2",
        "pupil-1", "pupil-2", "pupil-3", "pupil-4", "parent-1", "parent-2",
    }  # fmt: skip
    assert school.joined(school.room_of("class", "class-5a")) == {"staff-t1", "pupil-1", "pupil-2"}
    assert school.joined(school.room_of("parents", "class-5a")) == {
        "staff-t1",
        "parent-1",
        "parent-2",
    }
    assert school.joined(school.room_of("parents", "class-5b")) == {"staff-t2", "parent-1"}
    assert school.joined(school.room_of("staff")) == {"staff-director", "staff-t1", "staff-t2"}
    # Announcements: everyone is in, only staff may post.
    ann = result_of(school.rooms.get_room(school.room_of("announcements")))
    levels = ann.content("m.room.power_levels")
    assert levels["events_default"] == 50
    assert levels["users"][school.uid("staff-t1")] == 50
    assert school.uid("pupil-1") not in levels["users"]
    assert school.invited(ann.room_id) == school.invited(space)  # everyone, invited
    pupil = school.uid("pupil-1")
    result_of(school.rooms.update_membership(pupil, ann.room_id, pupil, "join"))
    from federation.errors import MatrixError

    with pytest.raises(MatrixError) as info:
        result_of(
            school.rooms.send_event(
                school.uid("pupil-1"), ann.room_id, "m.room.message", {"body": "hi"}
            )
        )
    assert info.value.http_status == 403 and "power level 50" in str(info.value)
    # The class rooms are children of the space.
    space_room = result_of(school.rooms.get_room(space))
    assert space_room.get("m.space.child", school.room_of("class", "class-5a")) is not None


def test_reimport_moves_and_removes_pupils(school):
    school.import_(school.export)
    school.rooms_sync()
    class_5a, class_5b = school.room_of("class", "class-5a"), school.room_of("class", "class-5b")

    def enrollments(rows):
        rows = [r for r in rows if r["userSourcedId"] != "pupil-4"]
        for r in rows:
            if r["userSourcedId"] == "pupil-2":
                r["classSourcedId"] = "class-5b"
        return rows

    def users(rows):
        for r in rows:
            if r["sourcedId"] == "pupil-1":
                r["givenName"] = "Alexandra"
        return [r for r in rows if r["sourcedId"] != "pupil-4"]

    edit(school.export, "enrollments", enrollments)
    edit(school.export, "users", users)
    result = school.import_(school.export)
    assert [p.sourced_id for p in result.plan.deactivate] == ["pupil-4"]
    assert school.rooms_sync() is True
    assert school.membership(class_5a, "pupil-2") == "leave"
    assert school.membership(class_5b, "pupil-2") == "join"
    assert school.membership(class_5b, "pupil-4") == "leave"
    assert school.membership(school.room_of("space"), "pupil-4") == "leave"
    # Parent 2 follows their child to 5B's parents' room.
    assert school.membership(school.room_of("parents", "class-5a"), "parent-2") == "leave"
    assert school.membership(school.room_of("parents", "class-5b"), "parent-2") == "join"
    # A new name reaches the member events of the rooms the pupil is in.
    room = result_of(school.rooms.get_room(class_5a))
    member = room.get("m.room.member", school.uid("pupil-1"))
    assert member.content == {"membership": "join", "displayname": "Alexandra Kuznetsov"}
    pupil4 = school.uid("pupil-4")
    assert school.node.login(pupil4, "x")[0] == 403
    assert school.import_(school.export).plan.is_empty()


def test_a_bad_export_changes_nothing(school):
    school.import_(school.export)
    before = school.db.run_sync(store.load_state)
    edit(school.export, "users", lambda rows: rows[:-1])  # parent-2 gone ...
    with open(school.export / "enrollments.csv", "a", encoding="utf-8") as fh:
        fh.write("enr-x,,2026-09-01,class-5a,org-school,ghost,student,,,\n")  # ... and a bad row
    from node.people.oneroster import RosterError

    with pytest.raises(RosterError):
        school.import_(school.export)
    assert school.db.run_sync(store.load_state) == before


def _codes(school, cls="class-5a") -> dict[str, str]:
    rows = school.db.run_sync(lambda conn: admin.issue_claim_codes(conn, cls, school.now))
    return {r["sourced_id"]: r["code"] for r in rows}


def test_claim_code_sets_the_first_password_once(school):
    school.import_(school.export)
    codes = _codes(school)
    assert set(codes) == {"pupil-1", "pupil-2", "parent-1", "parent-2"}  # no teachers
    pupil = school.uid("pupil-1")
    body = {"code": codes["pupil-1"].lower(), "new_password": "my new password"}
    assert school.node.call("POST", CLAIM, body) == (200, {"user_id": pupil})
    status, login = school.node.login(pupil, "my new password")
    assert status == 200 and login["user_id"] == pupil
    status, again = school.node.call("POST", CLAIM, body)
    assert (status, again["errcode"]) == (403, "M_FORBIDDEN")


def test_claim_errors(school):
    school.import_(school.export)
    codes = _codes(school)
    status, body = school.node.call("POST", CLAIM, {"code": codes["pupil-2"], "new_password": "x"})
    assert (status, body["errcode"]) == (400, "M_WEAK_PASSWORD")
    status, body = school.node.call("POST", CLAIM, {"new_password": "long enough pw"})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    # The weak password did not spend the code.
    ok = {"code": codes["pupil-2"], "new_password": "long enough pw"}
    assert school.node.call("POST", CLAIM, ok)[0] == 200
    # New codes replace the old ones.
    old = codes["parent-1"]
    _codes(school)
    status, body = school.node.call("POST", CLAIM, {"code": old, "new_password": "long enough"})
    assert status == 403


def test_guessing_codes_is_locked_out(school):
    school.import_(school.export)
    codes = _codes(school)
    statuses = []
    for i in range(150):
        guess = {"code": f"AAAA-AAAA-{i:04d}", "new_password": "long enough pw"}
        statuses.append(school.node.call("POST", CLAIM, guess, ip="10.9.9.9")[0])
    assert statuses[0] == 403 and statuses[-1] == 429
    # Even the right code is refused while the address is locked out.
    right = {"code": codes["pupil-1"], "new_password": "long enough pw"}
    status, body = school.node.call("POST", CLAIM, right, ip="10.9.9.9")
    assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert school.node.call("POST", CLAIM, right, ip="10.1.1.1")[0] == 200
