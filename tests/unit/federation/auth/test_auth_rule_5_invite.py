"""Rule 5.4 (v10/v11: 4.4): invites, including third-party invites (5.4.1)."""

import copy

import pytest

from authkit import ALICE, BOB, CAROL, DAVE, allowed, denied, make_room
from federation.b64 import encode_base64
from federation.keys import SigningKey
from federation.room_versions import V12
from federation.signing import sign_json

IS = "id.example"  # the identity server


@pytest.fixture(scope="module")
def is_key():
    return SigningKey("0", bytes(range(32)))


@pytest.fixture(scope="module")
def other_key():
    return SigningKey("1", bytes(range(1, 33)))


def tpi_room(rv, key, *, members=None, key_field="public_key", urlsafe=False, **pl):
    """A room where alice has sent an m.room.third_party_invite for token 'tok'."""
    room = make_room(rv, members=members, **pl)
    pub = encode_base64(key.verify_key.public_bytes, urlsafe=urlsafe)
    content = {
        "display_name": "b...@example.com",
        "key_validity_url": "https://id.example/_matrix/identity/v2/pubkey/isvalid",
    }
    if key_field == "public_key":
        content["public_key"] = pub
    else:
        content["public_key"] = encode_base64(b"\x01" * 32)  # not the signing key
        content["public_keys"] = [{"public_key": "not base64!"}, {"public_key": pub}]
    room.send(room.build("m.room.third_party_invite", ALICE, content, state_key="tok"))
    return room


def signed_block(key, mxid=BOB, token="tok"):
    return sign_json({"mxid": mxid, "token": token}, IS, key)


def tpi_invite(room, signed, sender=ALICE, target=BOB):
    return room.member(
        sender, target, "invite", third_party_invite={"display_name": "bob", "signed": signed}
    )


# --- 5.4.1 third-party invites ------------------------------------------------------


@pytest.mark.parametrize(
    "key_field,urlsafe", [("public_key", False), ("public_keys", False), ("public_key", True)]
)
def test_rule_5_4_1_7_signature_matches_public_key_allowed(rv, is_key, key_field, urlsafe):
    room = tpi_room(rv, is_key, key_field=key_field, urlsafe=urlsafe)
    ev = tpi_invite(room, signed_block(is_key))
    assert ("m.room.third_party_invite", "tok") in {room.events[i].key for i in ev.auth_event_ids}
    allowed(room, ev)


def test_rule_5_4_1_bypasses_sender_membership_and_invite_level(rv, is_key):
    # 5.4.1 decides on its own: 5.4.2-5.4.5 are never reached.  Carol issues the
    # third-party invite, then loses her invite power and leaves the room; the
    # identity-server-signed invite she sends is still allowed.
    room = make_room(rv, invite=50, users={CAROL: 50}, members={CAROL: "join"})
    pub = encode_base64(is_key.verify_key.public_bytes)
    room.send(
        room.build(
            "m.room.third_party_invite",
            CAROL,
            {"display_name": "x", "public_key": pub},
            state_key="tok",
        )
    )
    users = dict(room.state[("m.room.power_levels", "")].content["users"])
    room.set_power_levels(users=users, invite=100)
    room.send(room.member(CAROL, CAROL, "leave"))
    ev = tpi_invite(room, signed_block(is_key), sender=CAROL)
    allowed(room, ev)
    denied(room, room.member(CAROL, BOB, "invite"), "5.4.2")


def test_rule_5_4_1_1_banned_target_denied(rv, is_key):
    room = tpi_room(rv, is_key, members={BOB: "ban"})
    denied(room, tpi_invite(room, signed_block(is_key)), "5.4.1.1")


@pytest.mark.parametrize(
    "tpi", [{"display_name": "bob"}, "junk", {"display_name": "bob", "signed": "junk"}]
)
def test_rule_5_4_1_2_no_signed_object_denied(rv, is_key, tpi):
    room = tpi_room(rv, is_key)
    denied(room, room.member(ALICE, BOB, "invite", third_party_invite=tpi), "5.4.1.2")


@pytest.mark.parametrize("drop", ["mxid", "token"])
def test_rule_5_4_1_3_signed_without_mxid_or_token_denied(rv, is_key, drop):
    room = tpi_room(rv, is_key)
    block = {"mxid": BOB, "token": "tok"}
    del block[drop]
    denied(room, tpi_invite(room, sign_json(block, IS, is_key)), "5.4.1.3")


def test_rule_5_4_1_4_mxid_not_state_key_denied(rv, is_key):
    room = tpi_room(rv, is_key)
    denied(room, tpi_invite(room, signed_block(is_key, mxid=CAROL)), "5.4.1.4")


@pytest.mark.parametrize("token", ["other", 7])
def test_rule_5_4_1_5_no_third_party_invite_for_token_denied(rv, is_key, token):
    room = tpi_room(rv, is_key)
    denied(room, tpi_invite(room, signed_block(is_key, token=token)), "5.4.1.5")


def test_rule_5_4_1_6_sender_differs_from_third_party_invite_sender_denied(rv, is_key):
    room = tpi_room(rv, is_key, members={CAROL: "join"}, users={CAROL: 100})
    denied(room, tpi_invite(room, signed_block(is_key), sender=CAROL), "5.4.1.6")


def test_rule_5_4_1_8_signature_by_other_key_denied(rv, is_key, other_key):
    room = tpi_room(rv, is_key)
    denied(room, tpi_invite(room, signed_block(other_key)), "5.4.1.8")


def test_rule_5_4_1_8_tampered_signed_block_denied(rv, is_key):
    room = tpi_room(rv, is_key)
    block = signed_block(is_key)
    forged = copy.deepcopy(block)
    forged["mxid"] = CAROL
    # Matching state_key so that only the signature is wrong.
    denied(room, tpi_invite(room, forged, target=CAROL), "5.4.1.8")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b.pop("signatures"),
        lambda b: b.__setitem__("signatures", {IS: "junk"}),
        lambda b: b["signatures"][IS].__setitem__("ed25519:0", "!!!"),
        lambda b: b["signatures"].__setitem__(
            IS, {"curve25519:0": b["signatures"][IS]["ed25519:0"]}
        ),
    ],
)
def test_rule_5_4_1_8_malformed_signatures_denied(rv, is_key, mangle):
    room = tpi_room(rv, is_key)
    block = signed_block(is_key)
    mangle(block)
    denied(room, tpi_invite(room, block), "5.4.1.8")


def test_rule_5_4_1_8_invite_without_usable_public_key_denied(rv, is_key):
    room = make_room(rv)
    room.send(
        room.build(
            "m.room.third_party_invite",
            ALICE,
            {"display_name": "x", "public_key": "AAAA"},
            state_key="tok",
        )
    )
    denied(room, tpi_invite(room, signed_block(is_key)), "5.4.1.8")


# --- 5.4.2 - 5.4.5 ordinary invites ---------------------------------------------------


def test_rule_5_4_2_sender_not_joined_denied(rv):
    room = make_room(rv, members={CAROL: "invite"})
    denied(room, room.member(CAROL, BOB, "invite"), "5.4.2")
    denied(room, room.member(DAVE, BOB, "invite"), "5.4.2")


def test_rule_5_4_2_joined_sender_allowed(rv):
    room = make_room(rv, members={CAROL: "join"})
    allowed(room, room.member(CAROL, BOB, "invite"))


@pytest.mark.parametrize("membership", ["join", "ban"])
def test_rule_5_4_3_target_joined_or_banned_denied(rv, membership):
    room = make_room(rv, members={BOB: membership})
    denied(room, room.member(ALICE, BOB, "invite"), "5.4.3")


@pytest.mark.parametrize("membership", ["leave", "invite", "knock"])
def test_rule_5_4_3_target_left_invited_or_knocking_allowed(rv, membership):
    room = make_room(rv, members={BOB: membership})
    allowed(room, room.member(ALICE, BOB, "invite"))


def test_rule_5_4_4_sender_at_invite_level_allowed(rv):
    room = make_room(rv, invite=50, users={CAROL: 50}, members={CAROL: "join"})
    allowed(room, room.member(CAROL, BOB, "invite"))


def test_rule_5_4_5_sender_below_invite_level_denied(rv):
    room = make_room(rv, invite=50, users={CAROL: 49}, members={CAROL: "join"})
    denied(room, room.member(CAROL, BOB, "invite"), "5.4.5")


def test_rule_5_4_4_v12_creator_without_power_levels_can_invite():
    room = make_room(V12, power_levels=False)
    allowed(room, room.member(ALICE, BOB, "invite"))
