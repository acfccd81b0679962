"""Directors announced by a school are invited to the directors' and announcements rooms
once (the room state is the record), by the office admin; other classes of server are not;
failed invites are tried again at the next gathering; the gatherer drives it."""

from __future__ import annotations

from types import SimpleNamespace

from support.clocks import fake_clock
from support.deferreds import result_of

from city_support import FakeFederation
from gateway.directory.directors import DirectorInviter
from gateway.directory.gatherer import DirectoryGatherer

A, X = "school42.example", "ministry.example"
ADMIN = "@office:city.example"
DIRECTORS_ROOM, NEWS_ROOM = "!directors:city", "!news:city"


class FakeMembership:
    def __init__(self, rooms):
        self.rooms = rooms
        self.calls = []
        self.fail_for: set[str] = set()

    async def invite_user(self, sender, room_id, target, reason=None):
        self.calls.append((sender, room_id, target))
        if target in self.fail_for:
            raise RuntimeError("remote server refused")
        self.rooms.state[room_id][("m.room.member", target)] = SimpleNamespace(
            content={"membership": "invite"}
        )


class FakeRooms:
    def __init__(self):
        self.state = {DIRECTORS_ROOM: {}, NEWS_ROOM: {}}

    async def get_current_state(self, room_id):
        return dict(self.state[room_id])


def make(classes=None):
    rooms = FakeRooms()
    membership = FakeMembership(rooms)
    classes = classes or {A: "school", X: "external"}

    async def server_class(server):
        return classes.get(server)

    inviter = DirectorInviter(
        membership=membership,
        rooms=rooms,
        inviter=lambda: ADMIN,
        city_rooms=lambda: [DIRECTORS_ROOM, NEWS_ROOM],
        server_class=server_class,
    )
    return inviter, membership, rooms


def test_directors_are_invited_to_both_rooms_once():
    inviter, membership, rooms = make()
    d1, d2 = f"@director:{A}", f"@deputy.head:{A}"
    result_of(inviter.on_stats(A, {"directors": [d1, d2]}))
    assert sorted(membership.calls) == sorted(
        (ADMIN, r, d) for r in (DIRECTORS_ROOM, NEWS_ROOM) for d in (d1, d2)
    )
    result_of(inviter.on_stats(A, {"directors": [d1, d2]}))
    assert len(membership.calls) == 4  # already invited: not again


def test_a_director_who_left_or_joined_is_not_invited_again():
    inviter, membership, rooms = make()
    d = f"@director:{A}"
    rooms.state[DIRECTORS_ROOM][("m.room.member", d)] = SimpleNamespace(
        content={"membership": "leave"}
    )
    rooms.state[NEWS_ROOM][("m.room.member", d)] = SimpleNamespace(content={"membership": "join"})
    result_of(inviter.on_stats(A, {"directors": [d]}))
    assert membership.calls == []


def test_only_schools_directors_are_invited():
    inviter, membership, _ = make()
    result_of(inviter.on_stats(X, {"directors": [f"@minister:{X}"]}))
    result_of(inviter.on_stats("unknown.example", {"directors": ["@d:unknown.example"]}))
    assert membership.calls == []


def test_a_failed_invite_is_tried_again_next_time():
    inviter, membership, _ = make()
    d = f"@director:{A}"
    membership.fail_for.add(d)
    result_of(inviter.on_stats(A, {"directors": [d]}))
    assert len(membership.calls) == 2 and inviter.invited == []
    membership.fail_for.clear()
    result_of(inviter.on_stats(A, {"directors": [d]}))
    assert len(membership.calls) == 4 and len(inviter.invited) == 2


def test_no_city_rooms_yet_means_no_invites():
    inviter, membership, _ = make()
    inviter.city_rooms = lambda: ["", ""]
    result_of(inviter.on_stats(A, {"directors": [f"@director:{A}"]}))
    assert membership.calls == []


def test_the_gatherer_hands_announced_directors_to_the_inviter():
    inviter, membership, _ = make()
    fed = FakeFederation()
    fed.stats[A] = {
        "users": 3,
        "rooms": 1,
        "public_rooms": 0,
        "directors": [f"@director:{A}", "@director:other.example"],
    }

    async def members():
        return ["city.example", A]

    gatherer = DirectoryGatherer(
        client=fed, clock=fake_clock(0), server_name="city.example", members=members, interval_s=60
    )
    gatherer.on_stats.append(inviter.on_stats)

    async def go():
        await gatherer.gather_all()

    result_of(go())
    # The other server's user was dropped before it reached the inviter.
    assert {t for _, _, t in membership.calls} == {f"@director:{A}"}
