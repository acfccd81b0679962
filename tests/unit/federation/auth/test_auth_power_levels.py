"""Power level helpers, rule numbering and user ID validation."""

import pytest

from authkit import ALICE, BOB, CAROL, Room, make_room
from federation.auth import (
    event_send_level,
    get_power_levels_content,
    named_level,
    room_creators,
    rule_label,
    user_power_level,
)
from federation.auth.user_ids import is_valid_server_name, is_valid_user_id
from federation.room_versions import V10, V11, V12

INF = float("inf")


def test_named_level_defaults_without_power_levels(rv):
    room = Room(rv)
    assert get_power_levels_content(room.state) == {}
    assert {
        n: named_level(n, room.state)
        for n in (
            "invite",
            "kick",
            "ban",
            "redact",
            "state_default",
            "events_default",
            "users_default",
        )
    } == {
        "invite": 0,
        "kick": 50,
        "ban": 50,
        "redact": 50,
        "state_default": 50,
        "events_default": 0,
        "users_default": 0,
    }


def test_named_level_reads_content_and_ignores_non_integers(rv):
    room = make_room(rv, kick=10, invite=20)
    assert named_level("kick", room.state) == 10
    assert named_level("invite", room.state) == 20
    # A non-integer in state (cannot pass the v10+ rules) falls back to the default.
    room.accept(room.power_levels(kick="10", ban=True))
    assert named_level("kick", room.state) == 50
    assert named_level("ban", room.state) == 50


@pytest.mark.parametrize("v", [V10, V11])
def test_creator_has_100_without_power_levels_before_v12(v):
    room = Room(v)
    assert user_power_level(ALICE, room.state, v) == 100
    assert user_power_level(BOB, room.state, v) == 0


def test_v12_creators_are_infinite_with_or_without_power_levels():
    room = Room(V12, create_content={"additional_creators": [BOB]})
    assert user_power_level(ALICE, room.state, V12) == INF
    assert user_power_level(BOB, room.state, V12) == INF
    assert user_power_level(CAROL, room.state, V12) == 0
    room.join(ALICE)
    room.set_power_levels(users={CAROL: 70}, users_default=5)
    assert user_power_level(ALICE, room.state, V12) == INF
    assert user_power_level(BOB, room.state, V12) == INF
    assert user_power_level(CAROL, room.state, V12) == 70
    assert user_power_level("@x:y.example", room.state, V12) == 5


def test_v10_creator_is_content_creator_v11_is_sender():
    v10 = Room(V10, create_content={"creator": BOB})
    assert room_creators(v10.state, V10) == {BOB}
    assert user_power_level(BOB, v10.state, V10) == 100
    assert user_power_level(ALICE, v10.state, V10) == 0
    v11 = Room(V11, create_content={"creator": BOB})
    assert room_creators(v11.state, V11) == {ALICE}
    assert user_power_level(ALICE, v11.state, V11) == 100


def test_room_creators_v12_includes_additional_creators():
    room = Room(V12, create_content={"additional_creators": [BOB, CAROL]})
    assert room_creators(room.state, V12) == {ALICE, BOB, CAROL}
    assert room_creators({}, V12) == set()


def test_user_power_level_with_power_levels_event(rv):
    room = make_room(rv, users={BOB: 42})
    assert user_power_level(BOB, room.state, rv) == 42
    assert user_power_level(CAROL, room.state, rv) == 0
    expected_alice = INF if rv is V12 else 100
    assert user_power_level(ALICE, room.state, rv) == expected_alice


def test_event_send_level(rv):
    empty = Room(rv)
    assert event_send_level("m.room.message", False, empty.state) == 0
    assert event_send_level("m.room.topic", True, empty.state) == 50
    room = make_room(
        rv, events={"m.room.topic": 10, "m.custom": 80}, state_default=60, events_default=20
    )
    assert event_send_level("m.room.topic", True, room.state) == 10
    assert event_send_level("m.custom", False, room.state) == 80
    assert event_send_level("m.room.name", True, room.state) == 60
    assert event_send_level("m.room.message", False, room.state) == 20


@pytest.mark.parametrize(
    "rule,v10,v12",
    [
        ("1.4", "1.4", "1.4"),
        ("3.1", "2.1", "3.1"),
        ("3.4", "2.4", None),
        ("5.3.2", "4.3.2", "5.3.2"),
        ("10.3", "9.3", "10.3"),
        ("10.5", "9.4", "10.5"),
        ("10.10.1", "9.9.1", "10.10.1"),
        ("11", "10", "11"),
    ],
)
def test_rule_label_translates_v12_numbers(rule, v10, v12):
    assert rule_label(V10, rule) == v10
    assert rule_label(V11, rule) == v10
    if v12 is None:
        with pytest.raises(ValueError):
            rule_label(V12, rule)
    else:
        assert rule_label(V12, rule) == v12


def test_rule_label_rejects_rules_new_in_v12_for_older_versions():
    for rule in ("2", "10.4"):
        with pytest.raises(ValueError):
            rule_label(V10, rule)
        assert rule_label(V12, rule) == rule


@pytest.mark.parametrize(
    "uid",
    [
        "@alice:example.org",
        "@a:1.2.3.4:8448",
        "@a:[::1]",
        "@a:[1234:5678::abcd]:5678",
        "@:example.org",
        "@Historic User!:example.org",
        "@a:localhost",
    ],
)
def test_valid_user_ids(uid):
    assert is_valid_user_id(uid)


@pytest.mark.parametrize(
    "uid",
    [
        "alice:example.org",
        "@alice",
        "@alice:",
        "@a:exa mple.org",
        "@a:1.2.3.999",
        "@a:example.org:port",
        "@a\x00b:example.org",
        "@a:" + "x" * 260,
        7,
        None,
        "@a:[zz::1]",
    ],
)
def test_invalid_user_ids(uid):
    assert not is_valid_user_id(uid)


def test_server_names():
    assert is_valid_server_name("matrix.org:8888")
    assert not is_valid_server_name("")
    assert not is_valid_server_name("matrix.org:123456")
