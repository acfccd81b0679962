"""Building, signing and checking PDUs (v10, v11, v12), and PDU format validation.

Spec: server-server API "Signing Events", "Checks performed on receipt of a PDU" (steps
1-3), "Validating hashes and signatures on received events"; client-server "Size limits";
rooms v11 (create without creator, redacts in content), v12 (room ID = create event hash).
"""

from __future__ import annotations

import copy

import canonicaljson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.errors import BadJSON, InvalidParam
from federation.events import format as pdu_format
from federation.events.builder import (
    MAX_DEPTH,
    build_create_event,
    build_event,
    next_depth,
    sign_event,
)
from federation.events.checks import (
    SignatureKeyUnknown,
    check_received_event,
    has_valid_signature_from,
    verify_event_signatures,
)
from federation.events.format import check_pdu_format, is_valid_room_id, is_valid_user_id
from federation.events.hashes import check_content_hash, compute_event_id
from federation.events.redaction import redact
from federation.keys import SigningKey
from federation.room_versions import V10, V11, V12
from federation.signing import SignatureInvalid, SignatureMalformed, SignatureMissing

VERSIONS = [V10, V11, V12]


def ids(rv):
    return "v" + rv.identifier


KEY_A = SigningKey("a1", bytes(range(32)))
KEY_B = SigningKey("b1", bytes(range(1, 33)))
KEYS = {
    ("a.example", KEY_A.key_id): KEY_A.verify_key,
    ("b.example", KEY_B.key_id): KEY_B.verify_key,
}


def lookup(server, key_id):
    return KEYS.get((server, key_id))


def create(rv, creator="@alice:a.example", **kw):
    room_id = None if rv is V12 else "!room:a.example"
    return build_create_event(
        rv,
        server_name="a.example",
        signing_key=KEY_A,
        creator=creator,
        content=kw.pop("content", {}),
        origin_server_ts=1000,
        room_id=room_id,
        **kw,
    )


def message(rv, create_event, body="Homework: page 42", **kw):
    args = dict(
        server_name="a.example",
        signing_key=KEY_A,
        type="m.room.message",
        sender="@alice:a.example",
        content={"msgtype": "m.text", "body": body},
        room_id=create_event.room_id,
        prev_events=[create_event.event_id],
        auth_events=[] if rv is V12 else [create_event.event_id],
        depth=2,
        origin_server_ts=2000,
    )
    args.update(kw)
    return build_event(rv, **args)


# --- build ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_build_then_check_round_trip(rv):
    c = create(rv)
    m = message(rv, c, unsigned={"age": 5})
    for ev in (c, m):
        check_pdu_format(ev.pdu, rv)
        assert check_content_hash(ev.pdu)
        verify_event_signatures(ev.pdu, rv, lookup)
        assert ev.event_id == compute_event_id(ev.pdu, rv)
        got = check_received_event(ev.pdu, rv, lookup)
        assert got.event_id == ev.event_id
        assert got.pdu == ev.pdu and got.pdu is not ev.pdu
        assert not got.content_hash_mismatch
    assert m.pdu["unsigned"] == {"age": 5}
    assert m.content["body"] == "Homework: page 42"
    assert set(m.pdu["signatures"]) == {"a.example"}


@pytest.mark.parametrize(
    "prev, expected",
    [
        (0, 1),
        (41, 42),
        (MAX_DEPTH - 1, MAX_DEPTH),
        (MAX_DEPTH, MAX_DEPTH),
    ],
)
def test_next_depth_stays_at_the_canonical_limit(prev, expected):
    # "If the room's depth is already at the limit, the depth must be set to the limit."
    assert MAX_DEPTH == 2**53 - 1
    assert next_depth(prev) == expected


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_event_on_top_of_the_deepest_event_builds_and_checks(rv):
    c = create(rv)
    deep = message(rv, c, depth=MAX_DEPTH)
    ev = message(rv, c, body="next", prev_events=[deep.event_id], depth=next_depth(deep.depth))
    assert ev.depth == MAX_DEPTH
    assert check_received_event(copy.deepcopy(ev.pdu), rv, lookup).event_id == ev.event_id


def test_build_copies_content_and_unsigned():
    c = create(V12)
    content = {"body": "x", "nested": {"a": [1]}}
    unsigned = {"age": 1}
    m = message(V12, c, content=content, unsigned=unsigned)
    content["nested"]["a"].append(2)
    unsigned["age"] = 2
    assert m.content["nested"] == {"a": [1]} and m.pdu["unsigned"] == {"age": 1}
    check_received_event(m.pdu, V12, lookup)


@pytest.mark.parametrize("bad", [{"n": 1.5}, {"n": 2**53}, {"n": float("nan")}], ids=str)
def test_build_refuses_non_canonical_content(bad):
    with pytest.raises(BadJSON):
        message(V12, create(V12), content=bad)


def test_build_refuses_oversized_event():
    with pytest.raises(BadJSON, match="65536"):
        message(V12, create(V12), content={"body": "x" * 70000})


def test_build_refuses_invalid_sender():
    with pytest.raises(BadJSON, match="sender"):
        message(V12, create(V12), sender="alice")


# --- create events per version --------------------------------------------------------------


def test_v10_create_has_creator_and_needs_room_id():
    c = create(V10)
    assert c.content == {"creator": "@alice:a.example", "room_version": "10"}
    assert c.room_id == "!room:a.example" and c.state_key == "" and c.depth == 1
    with pytest.raises(InvalidParam):
        build_create_event(
            V10,
            server_name="a.example",
            signing_key=KEY_A,
            creator="@alice:a.example",
            content={},
            origin_server_ts=1,
        )
    with pytest.raises(InvalidParam, match="rule 1.2"):
        build_create_event(
            V10,
            server_name="a.example",
            signing_key=KEY_A,
            creator="@alice:a.example",
            content={},
            origin_server_ts=1,
            room_id="!room:b.example",
        )


@pytest.mark.parametrize("rv", [V11, V12], ids=ids)
def test_v11_create_has_no_creator(rv):
    c = create(rv, content={"m.federate": False})
    assert c.content == {"room_version": rv.identifier, "m.federate": False}
    assert c.sender == "@alice:a.example"


def test_create_refuses_other_room_version_in_content():
    with pytest.raises(InvalidParam):
        create(V11, content={"room_version": "10"})


def test_v12_room_id_is_derived_from_create_event():
    c = create(V12)
    assert "room_id" not in c.pdu
    assert c.room_id == "!" + c.event_id[1:]
    assert is_valid_room_id(c.room_id, V12) and not is_valid_room_id(c.room_id, V11)
    # The received create event has the same derived room ID.
    got = check_received_event(c.pdu, V12, lookup)
    assert got.room_id == c.room_id
    # A following event references it; its auth_events do not list the create event.
    m = message(V12, c)
    assert m.room_id == c.room_id and m.auth_event_ids == []
    assert check_received_event(m.pdu, V12, lookup).room_id == c.room_id
    with pytest.raises(InvalidParam):
        build_create_event(
            V12,
            server_name="a.example",
            signing_key=KEY_A,
            creator="@alice:a.example",
            content={},
            origin_server_ts=1,
            room_id=c.room_id,
        )
    with pytest.raises(InvalidParam):
        build_event(
            V12,
            server_name="a.example",
            signing_key=KEY_A,
            type="m.room.create",
            sender="@alice:a.example",
            content={},
            room_id=c.room_id,
            prev_events=[],
            auth_events=[],
            depth=1,
            origin_server_ts=1,
            state_key="",
        )


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_non_create_events_need_a_room_id(rv):
    with pytest.raises(InvalidParam):
        message(rv, create(rv), room_id=None)


def test_v12_create_carrying_a_room_id_is_left_to_auth_rule_1_2():
    # Well-formed (format passes); auth rule 1.2 rejects it.
    c = create(V12)
    pdu = copy.deepcopy(c.pdu)
    pdu["room_id"] = c.room_id
    check_pdu_format(pdu, V12)


# --- redactions: where `redacts` goes -------------------------------------------------------


def test_v10_redaction_has_top_level_redacts():
    c = create(V10)
    r = message(V10, c, type="m.room.redaction", content={"reason": "spam"}, redacts=c.event_id)
    assert r.pdu["redacts"] == c.event_id and "redacts" not in r.content
    assert r.redacts == c.event_id
    check_received_event(r.pdu, V10, lookup)


@pytest.mark.parametrize("rv", [V11, V12], ids=ids)
def test_v11_redaction_has_redacts_in_content_only(rv):
    c = create(rv)
    r = message(rv, c, type="m.room.redaction", content={"reason": "spam"}, redacts=c.event_id)
    assert r.content == {"reason": "spam", "redacts": c.event_id}
    assert "redacts" not in r.pdu
    assert r.redacts == c.event_id
    # redacts survives redaction (protected in content from v11).
    assert redact(r.pdu, rv)["content"] == {"redacts": c.event_id}
    check_received_event(r.pdu, rv, lookup)
    with pytest.raises(InvalidParam):
        message(
            rv, c, type="m.room.redaction", content={"redacts": "$" + "x" * 43}, redacts=c.event_id
        )


# --- received events: hashes and signatures -------------------------------------------------


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_tampered_content_yields_the_redacted_event(rv):
    m = message(rv, create(rv), unsigned={"age": 1})
    tampered = copy.deepcopy(m.pdu)
    tampered["content"]["body"] = "Homework cancelled!"
    before = copy.deepcopy(tampered)
    got = check_received_event(tampered, rv, lookup)
    assert tampered == before  # the caller's dict is untouched
    assert got.content_hash_mismatch is True
    assert got.pdu == redact(m.pdu, rv)
    assert got.content == {} and "unsigned" not in got.pdu
    assert got.event_id == m.event_id  # the reference hash covers the redacted form
    got.pdu["content"]["x"] = 1  # independent of the input
    assert tampered == before


@pytest.mark.parametrize(
    "field, value",
    [("depth", 3), ("origin_server_ts", 1), ("sender", "@mallory:a.example"), ("prev_events", [])],
)
def test_tampered_protected_field_is_a_signature_failure(field, value):
    m = message(V12, create(V12))
    tampered = copy.deepcopy(m.pdu)
    tampered[field] = value
    with pytest.raises(SignatureInvalid, match="does not match"):
        check_received_event(tampered, V12, lookup)


def test_forged_signature_is_invalid():
    m = message(V11, create(V11))
    forger = SigningKey("a1", b"\x07" * 32)  # same key ID, different key
    forged = copy.deepcopy(m.pdu)
    forged["signatures"] = {}
    sign_event(forged, V11, "a.example", forger)
    with pytest.raises(SignatureInvalid):
        check_received_event(forged, V11, lookup)


def test_missing_sender_server_signature():
    m = message(V12, create(V12))
    other = copy.deepcopy(m.pdu)
    other["signatures"] = {}
    sign_event(other, V12, "b.example", KEY_B)  # valid, but from the wrong server
    with pytest.raises(SignatureMissing, match="a.example"):
        check_received_event(other, V12, lookup)


def test_unknown_key_is_a_clear_missing_signature():
    m = message(V12, create(V12))
    with pytest.raises(SignatureKeyUnknown, match="ed25519:a1"):
        check_received_event(m.pdu, V12, lambda s, k: None)
    assert issubclass(SignatureKeyUnknown, SignatureMissing)


def test_unknown_extra_keys_are_skipped():
    m = message(V12, create(V12))
    pdu = copy.deepcopy(m.pdu)
    pdu["signatures"]["a.example"]["ed25519:old"] = "A" * 86  # unknown key: skipped
    pdu["signatures"]["a.example"]["curve25519:x"] = "whatever"  # unknown algorithm
    check_received_event(pdu, V12, lookup)


@pytest.mark.parametrize("sig", ["!!!", "AAAA"], ids=["not-base64", "too-short"])
def test_malformed_signature(sig):
    m = message(V12, create(V12))
    pdu = copy.deepcopy(m.pdu)
    pdu["signatures"]["a.example"][KEY_A.key_id] = sig
    with pytest.raises(SignatureMalformed):
        check_received_event(pdu, V12, lookup)


def test_signature_check_accepts_the_redacted_copy():
    m = message(V10, create(V10))
    verify_event_signatures(redact(m.pdu, V10), V10, lookup)


def restricted_join(rv, c):
    return build_event(
        rv,
        server_name="b.example",
        signing_key=KEY_B,
        type="m.room.member",
        sender="@bob:b.example",
        state_key="@bob:b.example",
        content={"membership": "join", "join_authorised_via_users_server": "@alice:a.example"},
        room_id=c.room_id,
        prev_events=[c.event_id],
        auth_events=[],
        depth=3,
        origin_server_ts=3000,
    )


@pytest.mark.parametrize("rv", VERSIONS, ids=ids)
def test_restricted_join_needs_the_authorising_server_signature(rv):
    j = restricted_join(rv, create(rv))
    with pytest.raises(SignatureMissing, match="join_authorised_via_users_server"):
        check_received_event(j.pdu, rv, lookup)
    assert not has_valid_signature_from(j.pdu, rv, "a.example", lookup)
    signed = sign_event(copy.deepcopy(j.pdu), rv, "a.example", KEY_A)
    got = check_received_event(signed, rv, lookup)
    assert got.event_id == j.event_id  # signatures are not part of the event ID
    assert has_valid_signature_from(signed, rv, "a.example", lookup)


def test_third_party_invite_does_not_require_the_sender_server():
    c = create(V12)
    invite = build_event(
        V12,
        server_name="b.example",
        signing_key=KEY_B,
        type="m.room.member",
        sender="@alice:a.example",
        state_key="@bob:b.example",
        content={
            "membership": "invite",
            "third_party_invite": {
                "display_name": "bob",
                "signed": {
                    "mxid": "@bob:b.example",
                    "token": "t",
                    "signatures": {"id.example": {"ed25519:0": "x"}},
                },
            },
        },
        room_id=c.room_id,
        prev_events=[c.event_id],
        auth_events=[],
        depth=2,
        origin_server_ts=2,
    )
    check_received_event(invite.pdu, V12, lookup)
    # But a sender-server signature that is present must still verify.
    bad = copy.deepcopy(invite.pdu)
    bad["signatures"]["a.example"] = {KEY_A.key_id: "A" * 86}
    with pytest.raises(SignatureInvalid):
        check_received_event(bad, V12, lookup)


# --- format ---------------------------------------------------------------------------------


def good_pdu(rv=V12):
    return copy.deepcopy(message(rv, create(rv)).pdu)


@pytest.mark.parametrize(
    "key",
    [
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
    ],
)
def test_missing_required_key(key):
    pdu = good_pdu()
    del pdu[key]
    with pytest.raises(BadJSON, match=f"missing required key '{key}'"):
        check_received_event(pdu, V12, lookup)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("type", 5, "'type' must be a string"),
        ("type", "t" * 256, "'type' is longer than 255 bytes"),
        ("sender", ["@a:a.example"], "'sender' must be a string"),
        ("sender", "alice@a.example", "not a valid user ID"),
        ("sender", "@alice:bad_host!", "not a valid user ID"),
        ("sender", "@" + "a" * 250 + ":a.example", "not a valid user ID"),
        ("room_id", "!room:a.example", "not a valid room ID for room version 12"),
        ("room_id", None, "'room_id' must be a string"),
        ("content", "text", "'content' must be an object"),
        ("content", [], "'content' must be an object"),
        ("depth", "2", "'depth' must be an integer, not string"),
        ("depth", True, "'depth' must be an integer, not boolean"),
        ("depth", 2.0, "'depth' must be an integer, not float"),
        ("depth", 2**53, "outside the canonical JSON integer range"),
        ("origin_server_ts", None, "'origin_server_ts' must be an integer"),
        ("prev_events", "$abc", "'prev_events' must be an array"),
        ("prev_events", ["$short"], r"prev_events\[0\] is not a valid event ID"),
        ("prev_events", [5], r"prev_events\[0\] is not a valid event ID"),
        ("prev_events", ["$" + "A" * 43] * 21, "at most 20"),
        ("auth_events", ["$" + "A" * 43] * 11, "at most 10"),
        ("auth_events", {}, "'auth_events' must be an array"),
        ("hashes", "abc", "'hashes' must be an object"),
        ("hashes", {}, "hashes.sha256"),
        ("signatures", [], "'signatures' must be an object"),
        ("signatures", {"a.example": "sig"}, "signatures.a.example"),
        ("signatures", {"a.example": {"ed25519:a1": 5}}, "must be a string"),
        ("state_key", 0, "'state_key' must be a string"),
        ("state_key", "é" * 128, "'state_key' is longer than 255 bytes"),
        ("unsigned", [], "'unsigned' must be an object"),
    ],
)
def test_wrong_typed_or_invalid_key(key, value, message):
    pdu = good_pdu()
    pdu[key] = value
    with pytest.raises(BadJSON, match=message):
        check_received_event(pdu, V12, lookup)


@pytest.mark.parametrize(
    "where, value",
    [
        ("content", {"n": 0.5}),
        ("content", {"n": [1, {"m": float("inf")}]}),
        ("content", {"n": -(2**53)}),
        ("unsigned", {"age": 1.0}),
        ("origin", 1.5),
        ("content", {1: "non-string key"}),
    ],
)
def test_non_canonical_values_are_refused(where, value):
    pdu = good_pdu()
    pdu[where] = value
    with pytest.raises(BadJSON):
        check_pdu_format(pdu, V12)


def test_oversized_pdu():
    pdu = good_pdu()
    pdu["content"]["body"] = "x" * 65536
    with pytest.raises(BadJSON, match="limit is 65536"):
        check_received_event(pdu, V12, lookup)


def test_size_limit_boundary_is_inclusive():
    from federation.canonical_json import encode_canonical_json

    pdu = good_pdu()
    size = len(encode_canonical_json(pdu))
    pdu["unsigned"] = {"pad": ""}
    pdu["unsigned"]["pad"] = "x" * (65536 - len(encode_canonical_json(pdu)))
    assert len(encode_canonical_json(pdu)) == 65536 > size
    check_pdu_format(pdu, V12)
    pdu["unsigned"]["pad"] += "x"
    with pytest.raises(BadJSON):
        check_pdu_format(pdu, V12)


def test_not_an_object():
    for bad in (None, [], "pdu"):
        with pytest.raises(BadJSON, match="must be a JSON object"):
            check_pdu_format(bad, V12)


def test_v10_v11_room_ids_need_a_server_name():
    for rv in (V10, V11):
        pdu = good_pdu(rv)
        check_pdu_format(pdu, rv)
        pdu["room_id"] = "!" + "r" * 250 + ":a.b"  # exactly 255 bytes: allowed
        check_pdu_format(pdu, rv)
        for bad in ("!nodomain", "room:a.example", "!r:bad host", "!" + "r" * 251 + ":a.b"):
            pdu["room_id"] = bad
            with pytest.raises(BadJSON, match="room_id"):
                check_pdu_format(pdu, rv)


def test_v10_top_level_redacts_must_be_an_event_id():
    pdu = good_pdu(V10)
    pdu["redacts"] = "not an id"
    with pytest.raises(BadJSON, match="redacts"):
        check_pdu_format(pdu, V10)


def test_v11_content_redacts_must_be_an_event_id():
    pdu = good_pdu(V11)
    pdu["type"] = "m.room.redaction"
    pdu["content"] = {"redacts": 5}
    with pytest.raises(BadJSON, match="content.redacts"):
        check_pdu_format(pdu, V11)


@pytest.mark.parametrize(
    "user_id, ok",
    [
        ("@alice:a.example", True),
        ("@:a.example", True),  # historical: empty localpart
        ("@Ünïcode:a.example", True),
        ("@a:1.2.3.4:8448", True),
        ("@a:[::1]:8448", True),
        ("@a:1.2.3.400", False),
        ("@a\x00b:a.example", False),
        ("@a", False),
        ("a:a.example", False),
        ("@a:", False),
        ("@a:exa mple", False),
    ],
)
def test_user_id_grammar(user_id, ok):
    assert is_valid_user_id(user_id) is ok


# --- the fast paths agree with the full checks ----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
pdu_keys = st.sampled_from(
    [
        "type",
        "sender",
        "room_id",
        "state_key",
        "content",
        "depth",
        "origin_server_ts",
        "prev_events",
        "auth_events",
        "hashes",
        "signatures",
        "unsigned",
        "redacts",
        "event_id",
        "origin",
    ]
)


@settings(max_examples=400, deadline=None)
@given(rv=st.sampled_from(VERSIONS), key=pdu_keys, value=json_values, delete=st.booleans())
def test_fast_structure_check_never_accepts_what_the_full_check_refuses(rv, key, value, delete):
    pdu = copy.deepcopy(BASE_PDUS[rv.identifier])
    if delete:
        pdu.pop(key, None)
    else:
        pdu[key] = value
    if pdu_format._fast_well_formed(pdu, rv):
        pdu_format._check_structure(pdu, rv)  # must not raise


@settings(max_examples=300, deadline=None)
@given(
    rv=st.sampled_from(VERSIONS),
    key=st.sampled_from(["content", "unsigned", "hashes", "origin"]),
    value=json_values,
)
def test_format_encoding_matches_the_reference_canonical_json(rv, key, value):
    pdu = copy.deepcopy(BASE_PDUS[rv.identifier])
    pdu[key] = (
        {"sha256": "x", "v": value}
        if key == "hashes"
        else (value if key == "origin" else {"v": value})
    )
    try:
        expected = canonicaljson.encode_canonical_json(pdu)
        canonical = not _has_float_or_big_int(pdu)
    except Exception:
        canonical = False
    if canonical:
        assert pdu_format.check_pdu_format_and_encode(pdu, rv) == expected
    else:
        with pytest.raises(BadJSON):
            check_pdu_format(pdu, rv)


def _has_float_or_big_int(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**53) < value < 2**53
    if isinstance(value, dict):
        return any(map(_has_float_or_big_int, value.values()))
    if isinstance(value, list):
        return any(map(_has_float_or_big_int, value))
    return False


def test_float_hidden_in_hashes_or_signatures_container_is_refused():
    pdu = good_pdu()
    pdu["hashes"]["other"] = 0.5
    with pytest.raises(BadJSON, match="Float"):
        check_pdu_format(pdu, V12)
    pdu = good_pdu()
    pdu["unsigned"] = {"age": 2**60}
    with pytest.raises(BadJSON, match="range"):
        check_pdu_format(pdu, V12)


BASE_PDUS = {
    rv.identifier: copy.deepcopy(message(rv, create(rv), unsigned={"age": 1}).pdu)
    for rv in VERSIONS
}
