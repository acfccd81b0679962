"""Rule 5.5-5.8 (v10/v11: 4.5-4.8): leave/kick/unban, ban, knock, unknown membership."""

import pytest

from authkit import ALICE, BOB, CAROL, DAVE, Room, allowed, denied, make_room
from federation.room_versions import V12

# --- 5.5.1 leaving oneself --------------------------------------------------------------


@pytest.mark.parametrize("membership", ["invite", "join", "knock"])
def test_rule_5_5_1_self_leave_from_invite_join_knock_allowed(rv, membership):
    room = make_room(rv, members={BOB: membership})
    allowed(room, room.member(BOB, BOB, "leave"))


@pytest.mark.parametrize("membership", [None, "leave", "ban"])
def test_rule_5_5_1_self_leave_otherwise_denied(rv, membership):
    room = make_room(rv, members={BOB: membership} if membership else None)
    denied(room, room.member(BOB, BOB, "leave"), "5.5.1")


# --- 5.5.2 - 5.5.5 kicks and unbans --------------------------------------------------------


def test_rule_5_5_2_kick_by_non_member_denied(rv):
    room = make_room(rv, users={CAROL: 100}, members={BOB: "join", CAROL: "invite"})
    denied(room, room.member(CAROL, BOB, "leave"), "5.5.2")


def test_rule_5_5_3_unban_below_ban_level_denied(rv):
    room = make_room(rv, users={CAROL: 60}, kick=50, ban=70, members={CAROL: "join", BOB: "ban"})
    denied(room, room.member(CAROL, BOB, "leave"), "5.5.3")


def test_rule_5_5_3_unban_at_ban_and_kick_level_allowed(rv):
    room = make_room(rv, users={CAROL: 70}, kick=50, ban=70, members={CAROL: "join", BOB: "ban"})
    allowed(room, room.member(CAROL, BOB, "leave"))


def test_rule_5_5_4_kick_lower_user_at_kick_level_allowed(rv):
    room = make_room(rv, users={CAROL: 50, BOB: 10}, members={CAROL: "join", BOB: "join"})
    allowed(room, room.member(CAROL, BOB, "leave"))


def test_rule_5_5_4_rescind_invite_allowed(rv):
    room = make_room(rv, members={BOB: "invite"})
    allowed(room, room.member(ALICE, BOB, "leave"))


def test_rule_5_5_5_kick_below_kick_level_denied(rv):
    room = make_room(rv, users={CAROL: 49}, members={CAROL: "join", BOB: "join"})
    denied(room, room.member(CAROL, BOB, "leave"), "5.5.5")


def test_rule_5_5_5_kick_equal_power_denied(rv):
    room = make_room(rv, users={CAROL: 50, BOB: 50}, members={CAROL: "join", BOB: "join"})
    denied(room, room.member(CAROL, BOB, "leave"), "5.5.5")


def test_rule_5_5_5_unban_needs_kick_level_too(rv):
    # "To unban somebody, you must have power level greater than or equal to both the
    # kick and ban levels".
    room = make_room(rv, users={CAROL: 60}, kick=80, ban=50, members={CAROL: "join", BOB: "ban"})
    denied(room, room.member(CAROL, BOB, "leave"), "5.5.5")


def test_rule_5_5_5_v12_creator_cannot_be_kicked():
    room = make_room(V12, users={CAROL: 100}, members={CAROL: "join"})
    denied(room, room.member(CAROL, ALICE, "leave"), "5.5.5")
    allowed(room, room.member(ALICE, CAROL, "leave"))


# --- 5.6 bans ------------------------------------------------------------------------------


def test_rule_5_6_1_ban_by_non_member_denied(rv):
    room = make_room(rv, users={CAROL: 100}, members={BOB: "join", CAROL: "join"})
    room.send(room.member(CAROL, CAROL, "leave"))
    denied(room, room.member(CAROL, BOB, "ban"), "5.6.1")
    denied(room, room.member(DAVE, BOB, "ban"), "5.6.1")


@pytest.mark.parametrize("target_membership", [None, "join", "invite", "leave"])
def test_rule_5_6_2_ban_lower_user_at_ban_level_allowed(rv, target_membership):
    members = {CAROL: "join"}
    if target_membership:
        members[BOB] = target_membership
    room = make_room(rv, users={CAROL: 50}, members=members)
    allowed(room, room.member(CAROL, BOB, "ban"))


def test_rule_5_6_3_ban_below_ban_level_denied(rv):
    room = make_room(rv, users={CAROL: 40}, members={CAROL: "join", BOB: "join"})
    denied(room, room.member(CAROL, BOB, "ban"), "5.6.3")


def test_rule_5_6_3_ban_equal_or_higher_user_denied(rv):
    room = make_room(rv, users={CAROL: 50, BOB: 60}, members={CAROL: "join", BOB: "join"})
    denied(room, room.member(CAROL, BOB, "ban"), "5.6.3")


def test_rule_5_6_3_v12_creators_cannot_ban_each_other():
    room = Room(V12, create_content={"additional_creators": [BOB]})
    room.join(ALICE)
    room.set_join_rule("public")
    room.join(BOB)
    denied(room, room.member(BOB, ALICE, "ban"), "5.6.3")
    allowed(room, room.member(BOB, CAROL, "ban"))


# --- 5.7 knocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("join_rule", ["knock", "knock_restricted"])
def test_rule_5_7_1_knock_in_knock_room_allowed(rv, join_rule):
    room = make_room(rv, join_rule=join_rule)
    allowed(room, room.member(BOB, BOB, "knock"))


@pytest.mark.parametrize("join_rule", ["invite", "public", "restricted", "private", None])
def test_rule_5_7_1_knock_in_other_room_denied(rv, join_rule):
    room = make_room(rv, join_rule=join_rule)
    denied(room, room.member(BOB, BOB, "knock"), "5.7.1")


def test_rule_5_7_2_knock_for_someone_else_denied(rv):
    room = make_room(rv, join_rule="knock")
    denied(room, room.member(ALICE, BOB, "knock"), "5.7.2")


@pytest.mark.parametrize("membership", [None, "leave", "knock"])
def test_rule_5_7_3_knock_when_not_member_allowed(rv, membership):
    room = make_room(rv, join_rule="knock", members={BOB: membership} if membership else None)
    allowed(room, room.member(BOB, BOB, "knock"))


@pytest.mark.parametrize("membership", ["ban", "invite", "join"])
def test_rule_5_7_4_knock_when_banned_invited_or_joined_denied(rv, membership):
    room = make_room(rv, join_rule="knock", members={BOB: membership})
    denied(room, room.member(BOB, BOB, "knock"), "5.7.4")


# --- 5.8 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("membership", ["dance", "JOIN", "", None, 1])
def test_rule_5_8_unknown_membership_denied(rv, membership):
    room = make_room(rv, join_rule="public")
    denied(room, room.member(BOB, BOB, membership), "5.8")


def test_rule_5_8_known_membership_allowed(rv):
    room = make_room(rv, join_rule="public", members={DAVE: "join"})
    allowed(room, room.member(DAVE, DAVE, "leave"))
