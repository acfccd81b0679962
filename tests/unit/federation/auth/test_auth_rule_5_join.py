"""Rule 5.1-5.3 (v10/v11: 4.1-4.3): member events in general, and joins."""

import pytest

from authkit import ALICE, ALICE2, BOB, CAROL, DAVE, Room, allowed, denied, make_room
from federation.room_versions import V10, V11, V12

# --- 5.1 ---------------------------------------------------------------------------------


def test_rule_5_1_member_event_with_state_key_and_membership_allowed(rv):
    room = make_room(rv, join_rule="public")
    allowed(room, room.member(BOB, BOB, "join"))


def test_rule_5_1_no_membership_denied(rv):
    room = make_room(rv, join_rule="public")
    denied(room, room.build("m.room.member", BOB, {"displayname": "Bob"}, state_key=BOB), "5.1")


def test_rule_5_1_no_state_key_denied(rv):
    room = make_room(rv, join_rule="public")
    denied(room, room.build("m.room.member", BOB, {"membership": "join"}), "5.1")


# --- 5.2.1 join_authorised_via_users_server signature -----------------------------------


def restricted_room(rv, **kw):
    room = make_room(rv, join_rule=None, members={CAROL: "join"}, **kw)
    room.set_join_rule(
        "restricted", allow=[{"type": "m.room_membership", "room_id": "!space:a.example"}]
    )
    return room


def test_rule_5_2_1_signed_by_authorising_server_allowed(rv):
    room = restricted_room(rv)
    seen = []

    def is_signed_by(event, server):
        seen.append((event.event_id, server))
        return server == "c.example"

    ev = room.member(BOB, BOB, "join", join_authorised_via_users_server=CAROL)
    allowed(room, ev, is_signed_by=is_signed_by)
    assert seen == [(ev.event_id, "c.example")]


def test_rule_5_2_1_not_signed_by_authorising_server_denied(rv):
    room = restricted_room(rv)
    ev = room.member(BOB, BOB, "join", join_authorised_via_users_server=CAROL)
    denied(room, ev, "5.2.1", is_signed_by=lambda event, server: False)


def test_rule_5_2_1_applies_to_every_membership(rv):
    # The key on a non-join member event still needs the signature.
    room = restricted_room(rv)
    ev = room.member(ALICE, BOB, "invite", join_authorised_via_users_server=CAROL)
    denied(room, ev, "5.2.1", is_signed_by=lambda event, server: False)
    allowed(room, ev, is_signed_by=lambda event, server: True)


def test_rule_5_2_1_invalid_user_id_denied(rv):
    room = restricted_room(rv)
    ev = room.member(BOB, BOB, "join", join_authorised_via_users_server="carol")
    denied(room, ev, "5.2.1", is_signed_by=lambda event, server: True)


def test_rule_5_2_1_without_signature_callback_left_to_transport(rv):
    room = restricted_room(rv)
    allowed(room, room.member(BOB, BOB, "join", join_authorised_via_users_server=CAROL))


# --- 5.3.1 the creator's first join -----------------------------------------------------


def test_rule_5_3_1_creator_join_after_create_allowed(rv):
    room = Room(rv)
    ev = room.member(ALICE, ALICE, "join")
    assert ev.prev_event_ids == ["$create"]
    allowed(room, ev)


def test_rule_5_3_1_creator_join_with_other_prev_events_denied(rv):
    # Not the only previous event: falls through to the join rule (none -> invite).
    room = Room(rv)
    ev = room.build(
        "m.room.member", ALICE, {"membership": "join"}, state_key=ALICE, prev=["$create", "$x"]
    )
    denied(room, ev, "5.3.7")


def test_rule_5_3_1_other_user_join_after_create_denied(rv):
    room = Room(rv)
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


def test_rule_5_3_1_v10_uses_content_creator():
    room = Room(V10, create_content={"creator": BOB})
    allowed(room, room.member(BOB, BOB, "join"))
    denied(room, room.member(ALICE, ALICE, "join"), "5.3.7")


@pytest.mark.parametrize("v", [V11, V12])
def test_rule_5_3_1_v11_plus_uses_create_sender(v):
    room = Room(v, create_content={"creator": BOB})
    allowed(room, room.member(ALICE, ALICE, "join"))
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


def test_rule_5_3_1_v12_additional_creator_is_not_the_first_joiner():
    room = Room(V12, create_content={"additional_creators": [BOB]})
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


# --- 5.3.2 - 5.3.3 -----------------------------------------------------------------------


def test_rule_5_3_2_join_for_someone_else_denied(rv):
    room = make_room(rv, join_rule="public")
    denied(room, room.member(ALICE, BOB, "join"), "5.3.2")


def test_rule_5_3_2_join_for_self_allowed(rv):
    room = make_room(rv, join_rule="public")
    allowed(room, room.member(BOB, BOB, "join"))


def test_rule_5_3_3_banned_user_join_denied(rv):
    room = make_room(rv, join_rule="public", members={BOB: "ban"})
    denied(room, room.member(BOB, BOB, "join"), "5.3.3")


def test_rule_5_3_3_unbanned_user_join_allowed(rv):
    room = make_room(rv, join_rule="public", members={BOB: "ban"})
    room.send(room.member(ALICE, BOB, "leave"))  # unban
    allowed(room, room.member(BOB, BOB, "join"))


# --- 5.3.4 invite / knock join rules --------------------------------------------------


@pytest.mark.parametrize("join_rule", ["invite", "knock"])
@pytest.mark.parametrize("membership", ["invite", "join"])
def test_rule_5_3_4_invited_or_joined_allowed(rv, join_rule, membership):
    room = make_room(rv, join_rule=join_rule, members={BOB: membership})
    allowed(room, room.member(BOB, BOB, "join"))


@pytest.mark.parametrize("join_rule", ["invite", "knock"])
@pytest.mark.parametrize("membership", [None, "leave", "knock"])
def test_rule_5_3_4_not_invited_denied(rv, join_rule, membership):
    room = make_room(rv, join_rule=join_rule, members={BOB: membership} if membership else None)
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


def test_rule_5_3_4_no_join_rules_event_treated_as_invite(rv):
    room = make_room(rv, join_rule=None, members={CAROL: "invite"})
    allowed(room, room.member(CAROL, CAROL, "join"))
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


# --- 5.3.5 restricted / knock_restricted -------------------------------------------------

RESTRICTED = ["restricted", "knock_restricted"]


def restricted(rv, join_rule, members=None, **pl):
    members = {CAROL: "join", **(members or {})}
    room = make_room(rv, join_rule=None, members=members, **pl)
    room.set_join_rule(
        join_rule, allow=[{"type": "m.room_membership", "room_id": "!space:a.example"}]
    )
    return room


@pytest.mark.parametrize("join_rule", RESTRICTED)
@pytest.mark.parametrize("membership", ["invite", "join"])
def test_rule_5_3_5_1_invited_or_joined_allowed_without_authoriser(rv, join_rule, membership):
    room = restricted(rv, join_rule, members={BOB: membership})
    allowed(room, room.member(BOB, BOB, "join"))


@pytest.mark.parametrize("join_rule", RESTRICTED)
def test_rule_5_3_5_2_no_authorising_user_denied(rv, join_rule):
    room = restricted(rv, join_rule)
    denied(room, room.member(BOB, BOB, "join"), "5.3.5.2")


@pytest.mark.parametrize("join_rule", RESTRICTED)
def test_rule_5_3_5_2_authoriser_not_joined_denied(rv, join_rule):
    room = restricted(rv, join_rule, members={DAVE: "invite"})
    for via in (DAVE, "@nobody:c.example"):
        ev = room.member(BOB, BOB, "join", join_authorised_via_users_server=via)
        denied(room, ev, "5.3.5.2")


@pytest.mark.parametrize("join_rule", RESTRICTED)
def test_rule_5_3_5_2_authoriser_below_invite_level_denied(rv, join_rule):
    room = restricted(rv, join_rule, invite=50)
    ev = room.member(BOB, BOB, "join", join_authorised_via_users_server=CAROL)
    denied(room, ev, "5.3.5.2")


@pytest.mark.parametrize("join_rule", RESTRICTED)
def test_rule_5_3_5_3_joined_authoriser_with_invite_power_allowed(rv, join_rule):
    room = restricted(rv, join_rule, invite=50, users={CAROL: 50})
    allowed(room, room.member(BOB, BOB, "join", join_authorised_via_users_server=CAROL))


@pytest.mark.parametrize("join_rule", RESTRICTED)
def test_rule_5_3_5_banned_user_cannot_use_authoriser(rv, join_rule):
    room = restricted(rv, join_rule, members={BOB: "ban"})
    ev = room.member(BOB, BOB, "join", join_authorised_via_users_server=CAROL)
    denied(room, ev, "5.3.3")


# --- 5.3.6 / 5.3.7 -----------------------------------------------------------------------


def test_rule_5_3_6_public_join_allowed(rv):
    room = make_room(rv, join_rule="public")
    allowed(room, room.member(BOB, BOB, "join"))
    allowed(room, room.member(ALICE2, ALICE2, "join"))


@pytest.mark.parametrize("join_rule", ["private", "org.example.custom"])
def test_rule_5_3_7_other_join_rules_denied(rv, join_rule):
    room = make_room(rv, join_rule=join_rule)
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


def test_rule_5_3_7_private_join_rule_still_lets_nobody_in_even_invited(rv):
    room = make_room(rv, join_rule=None, members={BOB: "invite"})
    room.set_join_rule("private")
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


# --- a join_rule that is not a string ----------------------------------------------------
# No join rule of 5.3.4-5.3.6 matches a number, null, list, object or boolean, so 5.3.7
# rejects every join (invited or joined users included) and 5.7.1 every knock.  Only a
# room without the event, or an event without the key, counts as "invite".

NON_STRING_RULES = [5, None, ["invite"], {"join_rule": "invite"}, True]
NON_STRING_IDS = ["number", "null", "list", "object", "bool"]


@pytest.mark.parametrize("join_rule", NON_STRING_RULES, ids=NON_STRING_IDS)
@pytest.mark.parametrize("membership", ["invite", "join"])
def test_rule_5_3_7_non_string_join_rule_denies_invited_and_joined(rv, join_rule, membership):
    room = make_room(rv, join_rule=None, members={BOB: membership})
    room.set_join_rule(join_rule)
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


@pytest.mark.parametrize("join_rule", NON_STRING_RULES, ids=NON_STRING_IDS)
def test_rule_5_3_7_non_string_join_rule_denies_uninvited(rv, join_rule):
    room = make_room(rv, join_rule=None)
    room.set_join_rule(join_rule)
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")


@pytest.mark.parametrize("join_rule", NON_STRING_RULES, ids=NON_STRING_IDS)
def test_rule_5_7_1_non_string_join_rule_denies_knock(rv, join_rule):
    room = make_room(rv, join_rule=None)
    room.set_join_rule(join_rule)
    denied(room, room.member(BOB, BOB, "knock"), "5.7.1")


def test_rule_5_3_4_join_rules_event_without_join_rule_treated_as_invite(rv):
    room = make_room(rv, join_rule=None, members={CAROL: "invite"})
    room.send(room.build("m.room.join_rules", ALICE, {}, state_key=""))
    allowed(room, room.member(CAROL, CAROL, "join"))
    denied(room, room.member(BOB, BOB, "join"), "5.3.7")
