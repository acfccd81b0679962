"""Rule 10 (v10/v11: 9): m.room.power_levels events.  v12 10.5..10.11 are v10/v11
9.4..9.10; 10.4 exists only in v12 (``denied`` translates the numbers)."""

import pytest

from authkit import ALICE, BOB, CAROL, DAVE, Room, allowed, denied, make_room
from federation.room_versions import V10, V11, V12

NAMED = ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]


def base_users(rv, **users):
    """A `users` map with alice at 100 before v12 (creators may not appear in v12)."""
    out = {} if rv is V12 else {ALICE: 100}
    out.update(users)
    return out


def moderated_room(rv, **pl):
    """Carol (50) and Dave (50) are moderators, Bob (0) is a member."""
    pl.setdefault("users", base_users(rv, **{CAROL: 50, DAVE: 50}))
    return make_room(rv, members={BOB: "join", CAROL: "join", DAVE: "join"}, **pl)


def pl_event(room, sender=ALICE, **content):
    return room.power_levels(sender, **content)


# --- 10.1 - 10.3 shapes -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("value", ["50", 50.0, True, None, [50]])
def test_rule_10_1_non_integer_named_level_denied(rv, name, value):
    room = make_room(rv)
    denied(room, pl_event(room, users=base_users(rv), **{name: value}), "10.1")


@pytest.mark.parametrize("name", NAMED)
def test_rule_10_1_integer_named_level_allowed(rv, name):
    room = make_room(rv)
    allowed(room, pl_event(room, users=base_users(rv), **{name: -5}))


@pytest.mark.parametrize("name", ["events", "notifications"])
@pytest.mark.parametrize("value", [{"x": "50"}, {"x": 5.5}, {"x": False}, [1], 50, "x"])
def test_rule_10_2_events_or_notifications_not_integer_map_denied(rv, name, value):
    room = make_room(rv)
    denied(room, pl_event(room, users=base_users(rv), **{name: value}), "10.2")


def test_rule_10_2_integer_maps_allowed(rv):
    room = make_room(rv)
    allowed(
        room,
        pl_event(
            room, users=base_users(rv), events={"m.room.name": 60}, notifications={"room": 20}
        ),
    )
    allowed(room, pl_event(room, users=base_users(rv), events={}, notifications={}))


@pytest.mark.parametrize(
    "users",
    [
        [ALICE],
        "junk",
        5,
        {BOB: "50"},
        {BOB: 50.0},
        {BOB: True},
        {"bob": 10},
        {"@bob": 10},
        {"@bob:bad host": 10},
        {"@b:" + "x" * 260: 1},
    ],
)
def test_rule_10_3_bad_users_map_denied(rv, users):
    room = make_room(rv)
    if isinstance(users, dict):
        users = {**base_users(rv), **users}
    denied(room, pl_event(room, users=users), "10.3")


def test_rule_10_3_valid_users_map_allowed(rv):
    room = make_room(rv)
    allowed(room, pl_event(room, users=base_users(rv, **{BOB: 10, "@old:b.example": -1})))


def test_rule_10_3_absent_users_allowed(rv):
    room = make_room(rv, power_levels=False)
    allowed(room, pl_event(room, ban=60))


# --- 10.4 (v12) creators may not be listed --------------------------------------------


@pytest.mark.parametrize("listed", [ALICE, BOB])
def test_rule_10_4_v12_creator_in_users_denied(listed):
    room = make_room(V12, create_content={"additional_creators": [BOB]})
    denied(room, pl_event(room, users={listed: 100}), "10.4")


def test_rule_10_4_v12_creators_at_any_value_denied_even_initially():
    room = make_room(V12, power_levels=False)
    denied(room, pl_event(room, users={ALICE: 2**53 - 1}), "10.4")


def test_rule_10_4_v12_non_creators_allowed():
    room = make_room(V12, create_content={"additional_creators": [BOB]})
    allowed(room, pl_event(room, users={CAROL: 100}))


@pytest.mark.parametrize("v", [V10, V11])
def test_rule_10_4_creator_may_be_listed_before_v12(v):
    room = make_room(v)
    allowed(room, pl_event(room, users={ALICE: 100}))


# --- 10.5 no previous power levels ----------------------------------------------------


def test_rule_10_5_first_power_levels_event_allowed(rv):
    # Without a previous event the change checks do not apply: the creator may
    # hand out levels and set thresholds freely.
    room = make_room(rv, power_levels=False)
    allowed(
        room,
        pl_event(room, users=base_users(rv, **{BOB: 100}), ban=100, events={"m.room.name": 100}),
    )


def test_rule_10_5_with_previous_event_changes_are_checked(rv):
    room = moderated_room(rv)
    denied(
        room,
        pl_event(
            room,
            CAROL,
            users=room.state[("m.room.power_levels", "")].content["users"],
            state_default=50,
            ban=100,
        ),
        "10.6.2",
    )


# --- 10.6 named levels -----------------------------------------------------------------


def users_now(room):
    return dict(room.state[("m.room.power_levels", "")].content["users"])


@pytest.mark.parametrize("name", NAMED)
def test_rule_10_6_1_changing_level_above_sender_denied(rv, name):
    # m.room.power_levels itself needs only 50, so state_default may be 60 here.
    room = moderated_room(rv, events={"m.room.power_levels": 50}, **{name: 60})
    content = {"users": users_now(room), "events": {"m.room.power_levels": 50}, name: 40}
    denied(room, pl_event(room, CAROL, **content), "10.6.1")


def test_rule_10_6_1_removing_level_above_sender_denied(rv):
    room = moderated_room(rv, ban=60)
    denied(room, pl_event(room, CAROL, users=users_now(room)), "10.6.1")


@pytest.mark.parametrize("name", NAMED)
def test_rule_10_6_2_new_level_above_sender_denied(rv, name):
    room = moderated_room(rv)
    denied(room, pl_event(room, CAROL, users=users_now(room), **{name: 51}), "10.6.2")


@pytest.mark.parametrize("name", NAMED)
def test_rule_10_6_changes_within_sender_level_allowed(rv, name):
    room = moderated_room(rv, **{name: 50})
    allowed(room, pl_event(room, CAROL, users=users_now(room), **{name: 10}))  # changed
    allowed(room, pl_event(room, CAROL, users=users_now(room)))  # removed
    room = moderated_room(rv)
    allowed(room, pl_event(room, CAROL, users=users_now(room), **{name: 50}))  # added


def test_rule_10_6_unchanged_high_levels_are_not_alterations(rv):
    room = moderated_room(rv, ban=100, kick=100)
    allowed(room, pl_event(room, CAROL, users=users_now(room), ban=100, kick=100, invite=5))


# --- 10.7 / 10.8 events and notifications ---------------------------------------------


@pytest.mark.parametrize("name,key", [("events", "m.room.name"), ("notifications", "room")])
def test_rule_10_7_1_changing_entry_above_sender_denied(rv, name, key):
    room = moderated_room(rv, **{name: {key: 60}})
    denied(room, pl_event(room, CAROL, users=users_now(room), **{name: {key: 10}}), "10.7.1")


@pytest.mark.parametrize("name,key", [("events", "m.room.name"), ("notifications", "room")])
def test_rule_10_7_1_removing_entry_above_sender_denied(rv, name, key):
    room = moderated_room(rv, **{name: {key: 60, "other": 0}})
    denied(room, pl_event(room, CAROL, users=users_now(room), **{name: {"other": 0}}), "10.7.1")


@pytest.mark.parametrize("name,key", [("events", "m.room.name"), ("notifications", "room")])
def test_rule_10_7_changing_and_removing_entries_at_sender_level_allowed(rv, name, key):
    room = moderated_room(rv, **{name: {key: 50, "other": 40, "kept": 100}})
    allowed(room, pl_event(room, CAROL, users=users_now(room), **{name: {key: 0, "kept": 100}}))


@pytest.mark.parametrize("name,key", [("events", "m.room.name"), ("notifications", "room")])
def test_rule_10_8_1_adding_entry_above_sender_denied(rv, name, key):
    room = moderated_room(rv)
    denied(room, pl_event(room, CAROL, users=users_now(room), **{name: {key: 51}}), "10.8.1")


@pytest.mark.parametrize("name,key", [("events", "m.room.name"), ("notifications", "room")])
def test_rule_10_8_adding_entry_at_sender_level_allowed(rv, name, key):
    room = moderated_room(rv)
    allowed(room, pl_event(room, CAROL, users=users_now(room), **{name: {key: 50}}))


# --- 10.9 / 10.10 users ------------------------------------------------------------------


def test_rule_10_9_1_changing_equal_user_denied(rv):
    room = moderated_room(rv)
    users = users_now(room)
    users[DAVE] = 10
    denied(room, pl_event(room, CAROL, users=users), "10.9.1")


def test_rule_10_9_1_removing_equal_user_denied(rv):
    room = moderated_room(rv)
    users = users_now(room)
    del users[DAVE]
    denied(room, pl_event(room, CAROL, users=users), "10.9.1")


def test_rule_10_9_changing_lower_user_allowed(rv):
    room = moderated_room(rv, users=base_users(rv, **{CAROL: 50, DAVE: 50, BOB: 20}))
    users = users_now(room)
    users[BOB] = 40
    allowed(room, pl_event(room, CAROL, users=users))
    del users[BOB]
    allowed(room, pl_event(room, CAROL, users=users))


def test_rule_10_9_own_entry_may_be_lowered(rv):
    room = moderated_room(rv)
    users = users_now(room)
    users[CAROL] = 0
    allowed(room, pl_event(room, CAROL, users=users))


def test_rule_10_10_1_raising_user_above_sender_denied(rv):
    room = moderated_room(rv)
    users = users_now(room)
    users[BOB] = 51
    denied(room, pl_event(room, CAROL, users=users), "10.10.1")


def test_rule_10_10_1_raising_own_level_denied(rv):
    room = moderated_room(rv)
    users = users_now(room)
    users[CAROL] = 51
    denied(room, pl_event(room, CAROL, users=users), "10.10.1")


def test_rule_10_10_raising_user_to_sender_level_allowed(rv):
    room = moderated_room(rv)
    users = users_now(room)
    users[BOB] = 50
    allowed(room, pl_event(room, CAROL, users=users))


def test_rule_10_11_v12_creator_may_change_anything():
    room = moderated_room(V12, ban=2**53 - 1)
    allowed(
        room,
        pl_event(
            room, ALICE, users={BOB: 2**53 - 1}, ban=0, events={"m.room.tombstone": 2**53 - 1}
        ),
    )


def test_rule_10_11_v12_additional_creator_may_demote_top_moderator():
    room = Room(V12, create_content={"additional_creators": [BOB]})
    room.join(ALICE)
    room.set_power_levels(users={CAROL: 1000})
    room.set_join_rule("public")
    room.join(BOB)
    allowed(room, pl_event(room, BOB, users={CAROL: 0}))


@pytest.mark.parametrize("v", [V10, V11])
def test_rule_10_9_1_before_v12_creator_at_100_cannot_demote_equal_user(v):
    room = moderated_room(v, users={ALICE: 100, CAROL: 100})
    denied(room, pl_event(room, ALICE, users={ALICE: 100, CAROL: 0}), "10.9.1")
