"""Auth events selection (server-server API "Auth events selection")."""

import pytest

from authkit import ALICE, BOB, CAROL
from federation.auth import auth_types_for_event
from federation.room_versions import V10, V11, V12

CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")


def member(u):
    return ("m.room.member", u)


def test_create_event_selects_nothing(rv):
    assert auth_types_for_event(rv, "m.room.create", ALICE, "", {"room_version": "12"}) == []


@pytest.mark.parametrize("v", [V10, V11])
def test_message_selects_create_power_levels_sender_before_v12(v):
    assert auth_types_for_event(v, "m.room.message", BOB, None, {"body": "hi"}) == [
        CREATE,
        PL,
        member(BOB),
    ]


def test_v12_never_selects_create():
    assert auth_types_for_event(V12, "m.room.message", BOB, None, {"body": "hi"}) == [
        PL,
        member(BOB),
    ]
    sel = auth_types_for_event(V12, "m.room.member", BOB, BOB, {"membership": "join"})
    assert CREATE not in sel


@pytest.mark.parametrize("membership", ["join", "invite", "knock"])
def test_member_join_invite_knock_select_target_and_join_rules(rv, membership):
    sel = auth_types_for_event(rv, "m.room.member", ALICE, BOB, {"membership": membership})
    assert member(ALICE) in sel and member(BOB) in sel and JR in sel


@pytest.mark.parametrize("membership", ["leave", "ban"])
def test_member_leave_ban_do_not_select_join_rules(rv, membership):
    sel = auth_types_for_event(rv, "m.room.member", ALICE, BOB, {"membership": membership})
    assert member(BOB) in sel and JR not in sel


def test_sender_equal_to_target_is_listed_once(rv):
    sel = auth_types_for_event(rv, "m.room.member", BOB, BOB, {"membership": "join"})
    assert sel.count(member(BOB)) == 1


def test_third_party_invite_selects_token_event(rv):
    content = {
        "membership": "invite",
        "third_party_invite": {"signed": {"mxid": BOB, "token": "tok"}},
    }
    sel = auth_types_for_event(rv, "m.room.member", ALICE, BOB, content)
    assert ("m.room.third_party_invite", "tok") in sel
    # No token (malformed): nothing extra is selected, and nothing crashes.
    bad = {"membership": "invite", "third_party_invite": {"signed": "nope"}}
    sel = auth_types_for_event(rv, "m.room.member", ALICE, BOB, bad)
    assert not any(t == "m.room.third_party_invite" for t, _ in sel)


def test_restricted_join_selects_authorising_member(rv):
    content = {"membership": "join", "join_authorised_via_users_server": CAROL}
    sel = auth_types_for_event(rv, "m.room.member", BOB, BOB, content)
    assert member(CAROL) in sel
    # Only for joins.
    content = {"membership": "invite", "join_authorised_via_users_server": CAROL}
    assert member(CAROL) not in auth_types_for_event(rv, "m.room.member", ALICE, BOB, content)


def test_non_mapping_content_is_treated_as_empty(rv):
    assert auth_types_for_event(rv, "m.room.member", BOB, BOB, "junk")[-1] == member(BOB)
