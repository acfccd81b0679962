"""Rules 1 (create), 2 (v12 room ID), 3 (auth events; v10/v11: 2) and 4 (m.federate;
v10/v11: 3).  Test names use v12 numbers; ``denied`` checks the room's own numbering."""

import pytest

from authkit import ALICE, ALICE2, BOB, CAROL, Room, allowed, denied, make_room
from federation.auth import (
    AuthError,
    check_state_dependent_auth_rules,
    check_state_independent_auth_rules,
)
from federation.room_versions import V10, V11, V12


def create_event(rv, content=None, **kw):
    """A fresh create event built by a throwaway room (not accepted anywhere)."""
    room = Room(rv, name="probe")
    base = {"room_version": rv.identifier}
    if not rv.auth.implicit_room_creator:
        base["creator"] = ALICE
    base.update(content or {})
    kw.setdefault("prev", [])
    kw.setdefault("auth", [])
    return room, room.build("m.room.create", ALICE, base, state_key="", name="c2", **kw)


# --- rule 1: m.room.create -------------------------------------------------------------


def test_rule_1_1_create_without_prev_events_allowed(rv):
    room, ev = create_event(rv)
    allowed(room, ev)


def test_rule_1_1_create_with_prev_events_denied(rv):
    room, ev = create_event(rv, prev=["$create"])
    denied(room, ev, "1.1")


@pytest.mark.parametrize("v", [V10, V11])
def test_rule_1_2_room_id_domain_matches_sender_allowed(v):
    room, ev = create_event(v, room_id="!new:a.example")
    allowed(room, ev)


@pytest.mark.parametrize("v", [V10, V11])
@pytest.mark.parametrize("room_id", ["!new:b.example", None])
def test_rule_1_2_room_id_domain_mismatch_or_missing_denied(v, room_id):
    room, ev = create_event(v, room_id=room_id)
    if room_id is None:
        assert "room_id" not in ev.pdu
    denied(room, ev, "1.2")


def test_rule_1_2_v12_create_without_room_id_allowed():
    room, ev = create_event(V12)
    assert "room_id" not in ev.pdu and ev.room_id == "!c2"
    allowed(room, ev)


def test_rule_1_2_v12_create_with_room_id_denied():
    room, ev = create_event(V12, room_id="!c2")
    denied(room, ev, "1.2")


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_rule_1_3_recognised_room_version_allowed(rv, version):
    room, ev = create_event(rv, {"room_version": version})
    allowed(room, ev)


def test_rule_1_3_absent_room_version_allowed(rv):
    room, ev = create_event(rv)
    del ev.pdu["content"]["room_version"]
    allowed(room, ev)


@pytest.mark.parametrize("version", ["999", "org.example.custom", 12, None])
def test_rule_1_3_unrecognised_room_version_denied(rv, version):
    room, ev = create_event(rv, {"room_version": version})
    denied(room, ev, "1.3")


def test_rule_1_4_v10_create_without_creator_denied():
    room, ev = create_event(V10)
    del ev.pdu["content"]["creator"]
    denied(room, ev, "1.4")


@pytest.mark.parametrize("v", [V11, V12])
def test_rule_1_4_v11_plus_creator_not_required(v):
    room, ev = create_event(v)
    assert "creator" not in ev.content
    allowed(room, ev)


def test_rule_1_4_v12_valid_additional_creators_allowed():
    room, ev = create_event(V12, {"additional_creators": [BOB, "@old style:c.example"]})
    allowed(room, ev)


@pytest.mark.parametrize("extra", [BOB, [BOB, 5], [BOB, "carol"], ["@x:bad host"], {"a": BOB}])
def test_rule_1_4_v12_invalid_additional_creators_denied(extra):
    room, ev = create_event(V12, {"additional_creators": extra})
    denied(room, ev, "1.4")


def test_rule_1_4_additional_creators_not_validated_before_v12():
    # Before v12 the key has no meaning to the auth rules.
    for v in (V10, V11):
        room, ev = create_event(v, {"additional_creators": "junk"})
        allowed(room, ev)


# --- rule 2 (v12): the room ID names an accepted create event --------------------------


def test_rule_2_v12_room_id_of_accepted_create_allowed():
    room = make_room(V12)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    assert "$create" not in ev.auth_event_ids
    check_state_independent_auth_rules(ev, room.events)  # create found by room ID
    allowed(room, ev)


def test_rule_2_v12_unknown_create_denied():
    room = make_room(V12)
    ev = room.build("m.room.message", ALICE, {"body": "hi"}, room_id="!elsewhere")
    denied(room, ev, "2")


def test_rule_2_v12_rejected_create_denied():
    room = make_room(V12)
    room.create.rejected_reason = "auth error"
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    denied(room, ev, "2")


def test_rule_2_v12_room_id_naming_non_create_event_denied():
    room = make_room(V12)
    ev = room.build("m.room.message", ALICE, {"body": "hi"}, room_id="!" + room.last.event_id[1:])
    denied(room, ev, "2")


def test_rule_2_v12_state_with_other_create_denied():
    room = make_room(V12)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    other = Room(V12, name="other")
    state = dict(room.state)
    state[("m.room.create", "")] = other.create
    with pytest.raises(AuthError) as info:
        check_state_dependent_auth_rules(ev, state)
    assert info.value.rule == "2"


# --- rule 3 (v10/v11: 2): the auth events -----------------------------------------------


def test_rule_3_missing_auth_event_denied(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].append("$unknown")
    denied(room, ev, "3")


def test_rule_3_auth_events_not_a_list_denied(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"}, auth="$create")
    denied(room, ev, "3")


def test_rule_3_1_distinct_auth_events_allowed(rv):
    room = make_room(rv)
    allowed(room, room.build("m.room.message", ALICE, {"body": "hi"}))


def test_rule_3_1_duplicate_type_state_key_denied(rv):
    room = make_room(rv)
    old_pl = room.state[("m.room.power_levels", "")]
    room.set_power_levels(users=dict(old_pl.content["users"]), kick=60)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].append(old_pl.event_id)
    denied(room, ev, "3.1")


def test_rule_3_1_same_event_listed_twice_denied(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].append(ev.auth_event_ids[-1])
    denied(room, ev, "3.1")


def test_rule_3_2_entry_outside_selection_denied(rv):
    # join rules are not selected for a message
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].append(room.state[("m.room.join_rules", "")].event_id)
    denied(room, ev, "3.2")


def test_rule_3_2_non_state_entry_denied(rv):
    room = make_room(rv)
    msg = room.send(room.build("m.room.message", ALICE, {"body": "hi"}))
    ev = room.build("m.room.message", ALICE, {"body": "again"})
    ev.pdu["auth_events"].append(msg.event_id)
    denied(room, ev, "3.2")


def test_rule_3_2_other_users_member_event_denied(rv):
    room = make_room(rv, members={BOB: "join"})
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].append(room.state[("m.room.member", BOB)].event_id)
    denied(room, ev, "3.2")


def test_rule_3_2_v12_listing_create_denied():
    room = make_room(V12)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].append("$create")
    denied(room, ev, "3.2")


@pytest.mark.parametrize("v", [V10, V11])
def test_rule_3_2_create_is_selected_before_v12(v):
    room = make_room(v)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    assert "$create" in ev.auth_event_ids
    allowed(room, ev)


def test_rule_3_3_rejected_auth_event_denied(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    room.state[("m.room.power_levels", "")].rejected_reason = "auth error"
    denied(room, ev, "3.3")


def test_rule_3_3_accepted_auth_events_allowed(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    assert all(room.events[i].rejected_reason is None for i in ev.auth_event_ids)
    allowed(room, ev)


@pytest.mark.parametrize("v", [V10, V11])
def test_rule_3_4_before_v12_no_create_among_auth_events_denied(v):
    # v10/v11 rule 2.4
    room = make_room(v)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    ev.pdu["auth_events"].remove("$create")
    denied(room, ev, "3.4")


@pytest.mark.parametrize("v", [V10, V11])
def test_rule_3_4_before_v12_create_among_auth_events_allowed(v):
    room = make_room(v)
    allowed(room, room.build("m.room.message", ALICE, {"body": "hi"}))


def test_rule_3_5_auth_event_from_same_room_allowed(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    assert {room.events[i].room_id for i in ev.auth_event_ids} == {ev.room_id}
    allowed(room, ev)


def test_rule_3_5_auth_event_from_other_room_denied(rv):
    room = make_room(rv)
    other = Room(rv, name="other")
    foreign_join = other.join(ALICE)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    own_join = room.state[("m.room.member", ALICE)].event_id
    ev.pdu["auth_events"] = [
        foreign_join.event_id if i == own_join else i for i in ev.auth_event_ids
    ]
    room.events[foreign_join.event_id] = foreign_join
    denied(room, ev, "3.5")


# --- rule 4 (v10/v11: 3): m.federate -------------------------------------------------------


def test_rule_4_m_federate_false_local_sender_allowed(rv):
    room = make_room(rv, join_rule="public", create_content={"m.federate": False})
    allowed(room, room.member(ALICE2, ALICE2, "join"))


def test_rule_4_m_federate_false_remote_sender_denied(rv):
    room = make_room(rv, join_rule="public", create_content={"m.federate": False})
    denied(room, room.member(BOB, BOB, "join"), "4")
    denied(room, room.build("m.room.message", CAROL, {"body": "x"}), "4")


def test_rule_4_m_federate_true_or_absent_remote_sender_allowed(rv):
    for content in ({"m.federate": True}, {}):
        room = make_room(rv, join_rule="public", create_content=content)
        allowed(room, room.member(BOB, BOB, "join"))


def test_state_dependent_rules_need_the_create_event(rv):
    room = make_room(rv)
    ev = room.build("m.room.message", ALICE, {"body": "hi"})
    state = {k: e for k, e in room.state.items() if k[0] != "m.room.create"}
    with pytest.raises(AuthError) as info:
        check_state_dependent_auth_rules(ev, state)
    assert info.value.rule == ("2" if rv is V12 else "2.4")


def test_create_event_is_decided_by_rule_1_in_both_halves(rv):
    room, ev = create_event(rv)
    check_state_independent_auth_rules(ev, {})
    check_state_dependent_auth_rules(ev, {})
    room, bad = create_event(rv, prev=["$x"])
    for check in (
        lambda: check_state_independent_auth_rules(bad, {}),
        lambda: check_state_dependent_auth_rules(bad, {}),
    ):
        with pytest.raises(AuthError) as info:
            check()
        assert info.value.rule == "1.1"
