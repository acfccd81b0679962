"""The redaction algorithm: room version 10 (v9 rules) against 11/12 (v11 rules).

Spec: rooms fragments ``v9-redactions.md`` and ``v11-redactions.md``.
"""

from __future__ import annotations

import copy
import hashlib

import pytest

from federation.canonical_json import encode_canonical_json
from federation.events.hashes import compute_event_id, event_id_from_reference_hash
from federation.events.redaction import redact
from federation.room_versions import V10, V11, V12

SIGS = {"a.example": {"ed25519:1": "c2ln"}}
HASHES = {"sha256": "aGFzaA"}


def event(type_, content, **extra):
    pdu = {
        "type": type_,
        "sender": "@alice:a.example",
        "room_id": "!r:a.example",
        "content": content,
        "depth": 5,
        "prev_events": ["$p"],
        "auth_events": ["$a"],
        "origin_server_ts": 123,
        "hashes": HASHES,
        "signatures": SIGS,
        "unsigned": {"age": 1},
    }
    pdu.update(extra)
    return pdu


def redacted_content(room_version, type_, content, **extra):
    return redact(event(type_, content, **extra), room_version)["content"]


# --- top level -----------------------------------------------------------------------------


def test_top_level_v10_keeps_origin_membership_prev_state():
    pdu = event(
        "m.room.message",
        {"body": "x"},
        origin="a.example",
        membership="join",
        prev_state=[],
        redacts="$x",
        extra="gone",
        event_id="$e",
    )
    out = redact(pdu, V10)
    assert set(out) == {
        "type",
        "sender",
        "room_id",
        "content",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
        "hashes",
        "signatures",
        "origin",
        "membership",
        "prev_state",
        "event_id",
    }
    assert out["signatures"] == SIGS and out["hashes"] == HASHES
    assert "unsigned" not in out and "redacts" not in out


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_top_level_v11_drops_origin_membership_prev_state(rv):
    pdu = event(
        "m.room.member",
        {"membership": "join"},
        state_key="@alice:a.example",
        origin="a.example",
        membership="join",
        prev_state=[],
        redacts="$x",
    )
    out = redact(pdu, rv)
    assert set(out) == {
        "type",
        "sender",
        "room_id",
        "content",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
        "hashes",
        "signatures",
        "state_key",
    }
    assert out["state_key"] == "@alice:a.example"


# --- content, type by type -----------------------------------------------------------------

CREATE = {
    "creator": "@alice:a.example",
    "room_version": "11",
    "m.federate": False,
    "predecessor": {"room_id": "!old:a.example"},
    "type": "m.space",
}


def test_create_content_v10_keeps_only_creator():
    assert redacted_content(V10, "m.room.create", CREATE) == {"creator": "@alice:a.example"}


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_create_content_v11_keeps_everything(rv):
    content = dict(CREATE, additional_creators=["@bob:b.example"])
    assert redacted_content(rv, "m.room.create", content) == content


@pytest.mark.parametrize("rv", [V10, V11, V12], ids=["v10", "v11", "v12"])
def test_join_rules_keep_join_rule_and_allow_in_all_three(rv):
    # `allow` has been protected since the v9 rules: no difference between 10 and 11 here.
    allow = [{"type": "m.room_membership", "room_id": "!space:a.example"}]
    content = {"join_rule": "restricted", "allow": allow, "note": "gone"}
    assert redacted_content(rv, "m.room.join_rules", content) == {
        "join_rule": "restricted",
        "allow": allow,
    }


POWER = {
    "ban": 50,
    "events": {"m.room.name": 50},
    "events_default": 0,
    "invite": 0,
    "kick": 50,
    "redact": 50,
    "state_default": 50,
    "users": {"@alice:a.example": 100},
    "users_default": 0,
    "notifications": {"room": 50},
}


def test_power_levels_v10_drops_invite_and_notifications():
    out = redacted_content(V10, "m.room.power_levels", POWER)
    assert "invite" not in out and "notifications" not in out
    assert out == {k: v for k, v in POWER.items() if k not in ("invite", "notifications")}


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_power_levels_v11_keeps_invite(rv):
    out = redacted_content(rv, "m.room.power_levels", POWER)
    assert out["invite"] == 0 and "notifications" not in out
    assert out == {k: v for k, v in POWER.items() if k != "notifications"}


def test_redaction_v10_keeps_nothing_of_content_nor_top_level_redacts():
    out = redact(event("m.room.redaction", {"redacts": "$t", "reason": "spam"}, redacts="$t"), V10)
    assert out["content"] == {} and "redacts" not in out


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_redaction_v11_keeps_redacts_in_content(rv):
    out = redact(event("m.room.redaction", {"redacts": "$t", "reason": "spam"}), rv)
    assert out["content"] == {"redacts": "$t"}


MEMBER_3PID = {
    "membership": "invite",
    "displayname": "Bob",
    "third_party_invite": {
        "display_name": "bob@…",
        "signed": {
            "mxid": "@bob:b.example",
            "token": "tok",
            "signatures": {"id": {"ed25519:0": "s"}},
        },
    },
}


def test_member_v10_drops_third_party_invite():
    out = redacted_content(V10, "m.room.member", MEMBER_3PID, state_key="@bob:b.example")
    assert out == {"membership": "invite"}


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_member_v11_keeps_only_signed_of_third_party_invite(rv):
    out = redacted_content(rv, "m.room.member", MEMBER_3PID, state_key="@bob:b.example")
    assert out == {
        "membership": "invite",
        "third_party_invite": {"signed": MEMBER_3PID["third_party_invite"]["signed"]},
    }


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_member_v11_third_party_invite_without_signed_keeps_empty_object(rv):
    # The v11 text ("allows the `signed` key of the `third_party_invite` key") reads
    # either way for an object without `signed`; Synapse keeps `{}`, and the redacted
    # form feeds the reference hash, so the event ID only agrees if we keep it too.
    content = {"membership": "invite", "third_party_invite": {"display_name": "x"}}
    assert redacted_content(rv, "m.room.member", content) == {
        "membership": "invite",
        "third_party_invite": {},
    }


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_member_v11_empty_third_party_invite_keeps_empty_object(rv):
    content = {"membership": "invite", "third_party_invite": {}}
    assert redacted_content(rv, "m.room.member", content) == {
        "membership": "invite",
        "third_party_invite": {},
    }


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
@pytest.mark.parametrize(
    "tpi", ["signed", ["signed"], None, 1, True], ids=["string", "list", "null", "number", "bool"]
)
def test_member_v11_non_object_third_party_invite_is_dropped(rv, tpi):
    # A value that is not an object has no `signed` key to allow: nothing of it is kept.
    content = {"membership": "invite", "third_party_invite": tpi}
    assert redacted_content(rv, "m.room.member", content) == {"membership": "invite"}


def test_member_v10_drops_empty_third_party_invite():
    content = {"membership": "invite", "third_party_invite": {}}
    assert redacted_content(V10, "m.room.member", content) == {"membership": "invite"}


@pytest.mark.parametrize("rv", [V11, V12], ids=["v11", "v12"])
def test_member_v11_event_id_hashes_the_kept_empty_object(rv):
    # The event ID is the reference hash of the redacted event: two servers agree on it
    # only if they redact `third_party_invite` the same way.
    pdu = event(
        "m.room.member",
        {"membership": "invite", "third_party_invite": {"display_name": "x"}},
        state_key="@bob:b.example",
    )
    expected = dict(redact(pdu, rv))
    expected["content"] = {"membership": "invite", "third_party_invite": {}}
    del expected["signatures"]
    digest = hashlib.sha256(encode_canonical_json(expected)).digest()
    assert compute_event_id(pdu, rv) == event_id_from_reference_hash(digest)


@pytest.mark.parametrize("rv", [V10, V11, V12], ids=["v10", "v11", "v12"])
def test_member_keeps_join_authorised_via_users_server(rv):
    content = {
        "membership": "join",
        "join_authorised_via_users_server": "@mod:a.example",
        "displayname": "Alice",
        "avatar_url": "mxc://a/b",
    }
    assert redacted_content(rv, "m.room.member", content) == {
        "membership": "join",
        "join_authorised_via_users_server": "@mod:a.example",
    }


@pytest.mark.parametrize("rv", [V10, V11, V12], ids=["v10", "v11", "v12"])
@pytest.mark.parametrize(
    "type_, content, kept",
    [
        (
            "m.room.history_visibility",
            {"history_visibility": "shared", "x": 1},
            {"history_visibility": "shared"},
        ),
        ("m.room.aliases", {"aliases": ["#a:a.example"]}, {}),  # unprotected since v6
        ("m.room.message", {"body": "secret", "msgtype": "m.text"}, {}),
        ("m.room.name", {"name": "Class 5b"}, {}),
        ("org.example.custom", {"anything": [1, 2]}, {}),
    ],
)
def test_content_of_other_types(rv, type_, content, kept):
    assert redacted_content(rv, type_, content) == kept


# --- shape of the result -------------------------------------------------------------------


def test_redact_returns_independent_copy_and_leaves_input_alone():
    pdu = event("m.room.power_levels", copy.deepcopy(POWER), state_key="")
    before = copy.deepcopy(pdu)
    out = redact(pdu, V11)
    assert pdu == before
    out["content"]["users"]["@eve:e.example"] = 100
    out["signatures"]["a.example"]["ed25519:1"] = "changed"
    out["prev_events"].append("$q")
    assert pdu == before


def test_redact_is_idempotent():
    for rv in (V10, V11, V12):
        once = redact(event("m.room.member", MEMBER_3PID, origin="x"), rv)
        assert redact(once, rv) == once


def test_malformed_content_redacts_to_empty_object():
    assert redact(event("m.room.create", "not an object"), V11)["content"] == {}
