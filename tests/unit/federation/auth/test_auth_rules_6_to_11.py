"""Rules 6-9 and 11 (v10/v11: 5-8 and 10): membership, third-party invite events, send
levels (including the absence of special redaction and alias rules), '@' state keys."""

import pytest

from authkit import ALICE, BOB, Room, allowed, denied, make_room
from federation.auth import AuthError, check_state_dependent_auth_rules
from federation.room_versions import V12

# --- 6 (v10/v11: 5) sender must be joined -----------------------------------------------


@pytest.mark.parametrize("membership", [None, "invite", "leave", "ban", "knock"])
def test_rule_6_non_joined_sender_denied(rv, membership):
    room = make_room(rv, members={BOB: membership} if membership else None)
    denied(room, room.build("m.room.message", BOB, {"body": "hi"}), "6")


def test_rule_6_joined_sender_allowed(rv):
    room = make_room(rv, members={BOB: "join"})
    allowed(room, room.build("m.room.message", BOB, {"body": "hi"}))


def test_rule_6_v12_creator_must_join_too():
    room = Room(V12)
    denied(room, room.build("m.room.message", ALICE, {"body": "hi"}), "6")


# --- 7 (v10/v11: 6) m.room.third_party_invite ---------------------------------------------


def tpi(room, sender):
    return room.build(
        "m.room.third_party_invite",
        sender,
        {"display_name": "x", "public_key": "AAAA"},
        state_key="tok",
    )


def test_rule_7_1_third_party_invite_at_invite_level_allowed(rv):
    # Decided by the invite level alone: a higher `events` level is never consulted.
    room = make_room(
        rv,
        invite=10,
        users={BOB: 10},
        members={BOB: "join"},
        events={"m.room.third_party_invite": 100},
        state_default=100,
    )
    allowed(room, tpi(room, BOB))


def test_rule_7_1_third_party_invite_below_invite_level_denied(rv):
    room = make_room(
        rv,
        invite=10,
        users={BOB: 9},
        members={BOB: "join"},
        events={"m.room.third_party_invite": 0},
    )
    denied(room, tpi(room, BOB), "7.1")


# --- 8 (v10/v11: 7) required power level -------------------------------------------------


def test_rule_8_message_at_events_default_allowed(rv):
    room = make_room(rv, events_default=20, users={BOB: 20}, members={BOB: "join"})
    allowed(room, room.build("m.room.message", BOB, {"body": "hi"}))


def test_rule_8_message_below_events_default_denied(rv):
    room = make_room(rv, events_default=20, users={BOB: 19}, members={BOB: "join"})
    denied(room, room.build("m.room.message", BOB, {"body": "hi"}), "8")


def test_rule_8_state_event_uses_state_default(rv):
    room = make_room(rv, members={BOB: "join"}, users={BOB: 49})
    denied(room, room.build("m.room.topic", BOB, {"topic": "t"}, state_key=""), "8")
    allowed(room, room.build("m.room.topic", ALICE, {"topic": "t"}, state_key=""))


def test_rule_8_events_entry_overrides_defaults(rv):
    room = make_room(rv, members={BOB: "join"}, events={"m.room.topic": 0, "m.room.message": 30})
    allowed(room, room.build("m.room.topic", BOB, {"topic": "t"}, state_key=""))
    denied(room, room.build("m.room.message", BOB, {"body": "hi"}), "8")


def test_rule_8_without_power_levels_creator_may_send_state(rv):
    room = make_room(rv, power_levels=False, join_rule=None)
    allowed(room, room.build("m.room.name", ALICE, {"name": "n"}, state_key=""))
    room.set_join_rule("public")
    room.join(BOB)
    denied(room, room.build("m.room.name", BOB, {"name": "n"}, state_key=""), "8")


def test_rule_8_v12_creator_exceeds_any_level():
    room = make_room(V12, events={"m.room.tombstone": 2**53 - 1})
    allowed(
        room,
        room.build(
            "m.room.tombstone", ALICE, {"body": "moved", "replacement_room": "!new"}, state_key=""
        ),
    )


def test_rule_8_redaction_needs_no_redact_level(rv):
    # v11+ note (and v10): the redact level is not considered by the auth rules.
    room = make_room(rv, redact=100, members={BOB: "join"})
    msg = room.send(room.build("m.room.message", ALICE, {"body": "hi"}))
    ev = room.build("m.room.redaction", BOB, {"redacts": msg.event_id}, redacts=msg.event_id)
    allowed(room, ev)


def test_rule_8_redaction_subject_to_events_level(rv):
    room = make_room(rv, redact=0, events={"m.room.redaction": 60}, members={BOB: "join"})
    msg = room.send(room.build("m.room.message", BOB, {"body": "hi"}))
    ev = room.build("m.room.redaction", BOB, {"redacts": msg.event_id}, redacts=msg.event_id)
    denied(room, ev, "8")


def test_rule_8_aliases_have_no_special_rule(rv):
    # Since v6 m.room.aliases is an ordinary state event: the sender's server name as
    # state_key is not enough, state_default applies.
    room = make_room(rv, members={BOB: "join"}, users={BOB: 10})
    ev = room.build("m.room.aliases", BOB, {"aliases": ["#r:b.example"]}, state_key="b.example")
    denied(room, ev, "8")
    room = make_room(rv, members={BOB: "join"}, users={BOB: 50})
    allowed(
        room,
        room.build("m.room.aliases", BOB, {"aliases": ["#r:b.example"]}, state_key="b.example"),
    )


# --- 9 (v10/v11: 8) '@' state keys ---------------------------------------------------------


def test_rule_9_state_key_of_other_user_denied(rv):
    room = make_room(rv, members={BOB: "join"})
    ev = room.build("org.example.profile", ALICE, {"x": 1}, state_key=BOB)
    denied(room, ev, "9")


def test_rule_9_state_key_of_sender_allowed(rv):
    room = make_room(rv, members={BOB: "join"}, events={"org.example.profile": 0})
    allowed(room, room.build("org.example.profile", BOB, {"x": 1}, state_key=BOB))
    allowed(room, room.build("org.example.profile", BOB, {"x": 1}, state_key="bob"))


# --- 11 (v10/v11: 10) otherwise allow --------------------------------------------------------


def test_rule_11_other_events_allowed(rv):
    room = make_room(rv, members={BOB: "join"})
    allowed(room, room.build("org.example.custom", BOB, {"anything": [1, 2]}))
    allowed(room, room.build("m.room.name", ALICE, {"name": "n"}, state_key=""))


def test_rule_11_soft_failure_against_current_state(rv):
    # The event passes against its auth events but not against a later state.
    room = make_room(rv, members={BOB: "join"})
    ev = room.build("m.room.message", BOB, {"body": "hi"})
    auth_state = {room.events[i].key: room.events[i] for i in ev.auth_event_ids}
    if rv is V12:
        auth_state[("m.room.create", "")] = room.create
    room.ban(ALICE, BOB)
    check_state_dependent_auth_rules(ev, auth_state)
    with pytest.raises(AuthError) as info:
        check_state_dependent_auth_rules(ev, room.state)
    assert info.value.rule == ("6" if rv is V12 else "5")
