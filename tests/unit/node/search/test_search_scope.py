"""Which stream ranges of a room a search may read (pure)."""

from __future__ import annotations

from node.search.scope import MAX_RANGES, build_scope, visible_ranges

U = "@u:s"


def test_joined_in_shared_room_sees_everything():
    assert visible_ranges(U, [(5, "join")], []) is None
    assert visible_ranges(U, [(5, "join")], [(2, "world_readable")]) is None


def test_left_room_ends_at_the_leave_even_when_world_readable():
    assert visible_ranges(U, [(5, "join"), (10, "leave")], []) == [(None, 10)]
    assert visible_ranges(U, [(5, "join"), (10, "leave")], [(2, "world_readable")]) == [(None, 10)]
    assert visible_ranges(U, [(5, "join"), (10, "ban")], []) == [(None, 10)]


def test_joined_visibility_hides_the_time_before_the_join_and_between_stays():
    hv = [(2, "joined")]
    assert visible_ranges(U, [(5, "join")], hv) == [(None, 2), (5, None)]
    assert visible_ranges(U, [(5, "join"), (10, "leave"), (20, "join")], hv) == [
        (None, 2),
        (5, 10),
        (20, None),
    ]


def test_invited_visibility_starts_at_the_invite():
    assert visible_ranges(U, [(5, "invite")], [(2, "invited")]) == [(5, None)]
    assert visible_ranges(U, [(5, "invite"), (7, "join")], [(2, "invited")]) == [
        (None, 2),
        (5, None),
    ]


def test_never_joined_sees_nothing_unless_world_readable():
    assert visible_ranges(U, [(5, "invite"), (6, "leave")], [(2, "joined")]) == []
    assert visible_ranges(U, [(5, "invite"), (6, "leave")], [(2, "world_readable")]) == [(2, 6)]


def test_scope_caps_ranges_keeping_the_newest():
    rooms = [(f"!r{i}", [(i * 10, i * 10 + 5)]) for i in range(MAX_RANGES + 50)]
    scope = build_scope([("!whole", None), *rooms, ("!none", [])])
    assert scope.whole_rooms == ["!whole"]
    assert len(scope.ranges) == MAX_RANGES
    assert min(r[2] for r in scope.ranges) == 50 * 10 + 5
    assert all(r[0] != "!none" for r in scope.ranges)
