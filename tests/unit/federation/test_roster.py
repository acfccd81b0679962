"""The city roster: document format, signature, hash chain and the node-side state
that refuses forged, modified, rolled-back, broken-chain and expired rosters."""

from __future__ import annotations

import copy
import hashlib

import pytest

from federation.b64 import encode_base64
from federation.canonical_json import encode_canonical_json
from federation.errors import MatrixError
from federation.keys import SigningKey
from federation.roster import (
    ROSTER_KEY_ID_PREFIX,
    Roster,
    RosterError,
    RosterState,
    build_roster,
    generate_roster_key,
    roster_hash,
    roster_key_fingerprint,
    server_entry,
    verify_roster,
)
from federation.signing import sign_json

CITY = "city.example"
DAY = 24 * 3600 * 1000
T0 = 1_700_000_000_000
ROSTER_KEY = SigningKey("roster_1", bytes(range(32)))
OTHER_KEY = SigningKey("roster_1", bytes(range(1, 33)))  # same key ID, different key
A_KEY = SigningKey("a1", b"\x01" * 32)
B_KEY = SigningKey("b1", b"\x02" * 32)
C_KEY = SigningKey("c1", b"\x03" * 32)


def entry(school_id, key, cls="school", name=None):
    return server_entry(
        school_id=school_id,
        name=name or f"School {school_id}",
        district="North",
        server_class=cls,
        verify_keys=[key.verify_key],
    )


SERVERS = {
    "a.example": entry("1", A_KEY),
    "b.example": entry("2", B_KEY),
    CITY: entry("city", C_KEY, cls="city", name="City office"),
}


def chain(n, servers=SERVERS, key=ROSTER_KEY, start=T0):
    docs, prev = [], None
    for i in range(n):
        servers_i = dict(servers)
        servers_i[f"s{i}.example"] = entry(f"x{i}", A_KEY)
        prev = build_roster(prev, servers_i, start + i * 1000, DAY, CITY, key)
        docs.append(prev)
    return docs


def state(*docs, now=T0):
    st = RosterState(ROSTER_KEY.verify_key, CITY)
    for d in docs:
        st.accept(d, now)
    return st


# --- format, build and verify --------------------------------------------------------------


def test_build_verify_round_trip():
    doc = build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    assert doc["version"] == 1 and doc["prev_sha256"] is None
    assert doc["issued_ts"] == T0 and doc["valid_until_ts"] == T0 + DAY
    assert set(doc["signatures"]) == {CITY}
    assert set(doc["signatures"][CITY]) == {"ed25519:roster_1"}
    r = verify_roster(doc, ROSTER_KEY.verify_key, CITY)
    assert isinstance(r, Roster) and r.version == 1
    assert set(r.servers) == {"a.example", "b.example", CITY}
    a = r.servers["a.example"]
    assert (a.school_id, a.name, a.district, a.server_class) == ("1", "School 1", "North", "school")
    assert a.verify_keys == {"ed25519:a1": A_KEY.verify_key}
    assert r.servers[CITY].server_class == "city"
    assert r.sha256 == roster_hash(doc)
    assert r.by_school_id("2").server_name == "b.example"


def test_roster_hash_is_sha256_of_canonical_signed_json():
    doc = build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    expected = encode_base64(hashlib.sha256(encode_canonical_json(doc)).digest())
    assert roster_hash(doc) == expected and len(expected) == 43
    doc2 = build_roster(doc, SERVERS, T0 + 1, DAY, CITY, ROSTER_KEY)
    assert doc2["version"] == 2 and doc2["prev_sha256"] == expected


def test_build_does_not_alias_input():
    servers = copy.deepcopy(SERVERS)
    doc = build_roster(None, servers, T0, DAY, CITY, ROSTER_KEY)
    servers["a.example"]["name"] = "changed"
    verify_roster(doc, ROSTER_KEY.verify_key, CITY)  # still verifies
    assert doc["servers"]["a.example"]["name"] == "School 1"


def test_fingerprint_is_sha256_of_raw_public_key():
    fp = roster_key_fingerprint(ROSTER_KEY.verify_key)
    assert fp == encode_base64(hashlib.sha256(ROSTER_KEY.verify_key.public_bytes).digest())
    assert fp != roster_key_fingerprint(OTHER_KEY.verify_key)


def test_generate_roster_key_id():
    k = generate_roster_key(3)
    assert k.key_id == "ed25519:roster_3" and k.key_id.startswith(ROSTER_KEY_ID_PREFIX)


def test_server_key_cannot_sign_or_be_pinned_as_roster_key():
    with pytest.raises(RosterError, match="not a roster key"):
        build_roster(None, SERVERS, T0, DAY, CITY, A_KEY)
    with pytest.raises(RosterError, match="not a roster key"):
        RosterState(A_KEY.verify_key, CITY)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: e.update({"class": "rogue"}), "class must be one of"),
        (lambda e: e.update({"verify_keys": {}}), "at least one key"),
        (lambda e: e.update({"verify_keys": {"ed25519:x": {"key": "@@"}}}), "ed25519:x"),
        (lambda e: e.update({"verify_keys": {"curve:x": {"key": "AAAA"}}}), "algorithm"),
        (lambda e: e.update({"school_id": ""}), "school_id"),
        (lambda e: e.pop("name"), "name"),
        (
            lambda e: e.update(
                {"old_verify_keys": {"ed25519:o": {"key": A_KEY.verify_key.encode()}}}
            ),
            "expired_ts",
        ),
    ],
)
def test_bad_entries_refused_with_clear_message(mutate, message):
    servers = copy.deepcopy(SERVERS)
    mutate(servers["a.example"])
    with pytest.raises(RosterError, match=message) as exc:
        build_roster(None, servers, T0, DAY, CITY, ROSTER_KEY)
    assert "a.example" in exc.value.message and exc.value.reason == "malformed"


def test_bad_server_name_and_duplicate_school_id_refused():
    with pytest.raises(RosterError, match="not a valid server name"):
        build_roster(None, {"bad name!": entry("9", A_KEY)}, T0, DAY, CITY, ROSTER_KEY)
    with pytest.raises(RosterError, match="school_id '1' is used by both"):
        build_roster(
            None,
            {"a.example": entry("1", A_KEY), "z.example": entry("1", B_KEY)},
            T0,
            DAY,
            CITY,
            ROSTER_KEY,
        )


def _resign(doc, key=ROSTER_KEY):
    doc = copy.deepcopy(doc)
    doc.pop("signatures", None)
    return sign_json(doc, CITY, key)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update({"version": 0}), "version must be an integer >= 1"),
        (lambda d: d.update({"version": True}), "version must be an integer"),
        (lambda d: d.update({"valid_until_ts": d["issued_ts"]}), "valid_until_ts"),
        (lambda d: d.update({"issued_ts": "now"}), "issued_ts"),
        (lambda d: d.pop("prev_sha256"), "no prev_sha256"),
        (lambda d: d.update({"prev_sha256": "x" * 43}), "version 1 must have prev_sha256 null"),
        (lambda d: d.update({"servers": []}), "servers must be an object"),
    ],
)
def test_signed_but_malformed_documents_refused(mutate, message):
    doc = build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    mutate(doc)
    with pytest.raises(RosterError, match=message):
        verify_roster(_resign(doc), ROSTER_KEY.verify_key, CITY)


def test_version_2_needs_a_prev_hash():
    d1 = build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    d2 = build_roster(d1, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    d2["prev_sha256"] = None
    with pytest.raises(RosterError, match="version 2 must have prev_sha256"):
        verify_roster(_resign(d2), ROSTER_KEY.verify_key, CITY)


def test_floats_and_non_objects_refused():
    doc = build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    doc["issued_ts"] = 1.5
    with pytest.raises(RosterError, match="canonical JSON"):
        verify_roster(doc, ROSTER_KEY.verify_key, CITY)
    with pytest.raises(RosterError, match="JSON object"):
        verify_roster([doc], ROSTER_KEY.verify_key, CITY)


def test_signature_checks():
    doc = build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    # By another key with the same key ID: does not verify.
    with pytest.raises(RosterError) as exc:
        verify_roster(_resign(doc, OTHER_KEY), ROSTER_KEY.verify_key, CITY)
    assert exc.value.reason == "signature"
    # Under another signer name.
    with pytest.raises(RosterError, match="signed by evil.example") as exc:
        verify_roster(
            sign_json(_resign(doc) | {"signatures": {}}, "evil.example", ROSTER_KEY),
            ROSTER_KEY.verify_key,
            CITY,
        )
    assert exc.value.reason == "signer"
    # An extra signature (would change the hash without changing the content).
    extra = copy.deepcopy(doc)
    sign_json(extra, CITY, generate_roster_key(2))
    with pytest.raises(RosterError, match="exactly one signature") as exc:
        verify_roster(extra, ROSTER_KEY.verify_key, CITY)
    assert exc.value.reason == "signer"
    # Unsigned.
    bare = {k: v for k, v in doc.items() if k != "signatures"}
    with pytest.raises(RosterError, match="not signed"):
        verify_roster(bare, ROSTER_KEY.verify_key, CITY)
    # An unsigned part would not be covered by the signature.
    with pytest.raises(RosterError, match="unsigned"):
        verify_roster(dict(doc, unsigned={"x": 1}), ROSTER_KEY.verify_key, CITY)


def test_roster_error_is_a_matrix_error():
    assert issubclass(RosterError, MatrixError)
    err = RosterError("x", reason="chain")
    assert err.to_json()["errcode"] == "M_FORBIDDEN" and err.reason == "chain"


# --- RosterState: the attacks ------------------------------------------------------------


def test_empty_state_admits_nobody():
    st = RosterState(ROSTER_KEY.verify_key, CITY)
    assert not st.is_member("a.example") and st.version == 0 and st.current is None
    assert st.is_stale(T0) and st.pinned_keys("a.example") == {}
    assert st.server_class("a.example") is None and st.entry("a.example") is None


def test_lookups():
    st = state(build_roster(None, SERVERS, T0, DAY, CITY, ROSTER_KEY))
    assert st.is_member("a.example") and not st.is_member("rogue.example")
    assert st.server_class(CITY) == "city" and st.server_class("a.example") == "school"
    assert st.pinned_keys("b.example") == {"ed25519:b1": B_KEY.verify_key}
    assert st.entry("a.example").school_id == "1"
    assert not st.is_stale(T0 + DAY) and st.is_stale(T0 + DAY + 1)


def _refused(st, doc, reason, now=T0):
    before = st.current
    with pytest.raises(RosterError) as exc:
        st.accept(doc, now)
    assert exc.value.reason == reason, exc.value.message
    assert st.current is before  # the last good roster is kept
    return exc.value


def test_attack_signed_by_another_key():
    d1, d2 = chain(2)
    st = state(d1)
    forged = build_roster(
        d1, dict(SERVERS, **{"rogue.example": entry("r", A_KEY)}), T0, DAY, CITY, OTHER_KEY
    )
    _refused(st, forged, "signature")
    assert not st.is_member("rogue.example")
    st.accept(d2, T0)
    assert st.version == 2


def test_attack_modified_with_old_signature():
    d1, d2 = chain(2)
    st = state(d1)
    tampered = copy.deepcopy(d2)
    tampered["servers"]["rogue.example"] = entry("r", A_KEY)
    err = _refused(st, tampered, "signature")
    assert "pinned key" in err.message
    assert not st.is_member("rogue.example") and st.version == 1


def test_attack_rollback_and_fork():
    d1, d2, d3 = chain(3)
    st = state(d1, d2, d3)
    err = _refused(st, d1, "rollback")
    assert "older than the current version 3" in err.message
    _refused(st, d2, "rollback")
    # The same version again: identical is a no-op, different is refused.
    assert st.accept(copy.deepcopy(d3), T0) is st.current
    other3 = build_roster(d2, SERVERS, T0 + 5, DAY, CITY, ROSTER_KEY)
    _refused(st, other3, "fork")


def test_attack_broken_chain():
    d1, d2 = chain(2)
    st = state(d1)
    # A correctly signed version 2 that does not follow our version 1 (e.g. a fork).
    other1 = build_roster(None, {}, T0 + 7, DAY, CITY, ROSTER_KEY)
    broken = build_roster(other1, SERVERS, T0, DAY, CITY, ROSTER_KEY)
    err = _refused(st, broken, "chain")
    assert "prev_sha256" in err.message
    st.accept(d2, T0)
    assert st.version == 2


def test_attack_gap_needs_intermediate_versions():
    docs = chain(4)
    st = state(docs[0])
    err = _refused(st, docs[3], "gap")
    assert "skips versions 2..3" in err.message


def test_expired_refused_as_update_but_current_kept_enforced():
    d1, d2 = chain(2)
    st = state(d1)
    late = d2["valid_until_ts"] + 1
    _refused(st, d2, "expired", now=late)
    assert st.is_member("a.example") and st.version == 1  # still enforced
    assert st.is_stale(late)
    # An expired doc is refused even as the first roster.
    _refused(RosterState(ROSTER_KEY.verify_key, CITY), d1, "expired", now=late)


def test_restore_keeps_an_expired_roster_enforced():
    d1 = chain(1)[0]
    st = RosterState(ROSTER_KEY.verify_key, CITY)
    st.restore(d1)
    assert st.is_member("a.example") and st.is_stale(d1["valid_until_ts"] + 1)
    with pytest.raises(RosterError):
        st.restore(d1)
    tampered = copy.deepcopy(d1)
    tampered["servers"].pop("a.example")
    with pytest.raises(RosterError):
        RosterState(ROSTER_KEY.verify_key, CITY).restore(tampered)


def test_state_holds_a_private_copy():
    d1 = chain(1)[0]
    st = state(d1)
    d1["servers"].pop("a.example")
    assert st.is_member("a.example")
    assert "a.example" in st.current.doc["servers"]


# --- chains ------------------------------------------------------------------------------


def test_five_versions_accepted_in_order():
    docs = chain(5)
    st = RosterState(ROSTER_KEY.verify_key, CITY)
    seen = []
    st.add_listener(lambda old, new: seen.append((old.version if old else 0, new.version)))
    for i, d in enumerate(docs, 1):
        assert st.accept(d, T0).version == i
        assert st.is_member(f"s{i - 1}.example")
    assert seen == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    for i in range(2, 6):
        assert docs[i - 1]["prev_sha256"] == roster_hash(docs[i - 2])


def test_accept_chain_catches_up_in_any_order():
    docs = chain(5)
    st = state(docs[0])
    r = st.accept_chain([docs[4], docs[2], docs[1], docs[3], docs[0]], T0)
    assert r.version == 5 and st.version == 5
    # Nothing new: no change.
    assert st.accept_chain(docs, T0) is st.current
    # From empty.
    st2 = RosterState(ROSTER_KEY.verify_key, CITY)
    assert st2.accept_chain(docs, T0).version == 5


def test_accept_chain_all_or_nothing():
    docs = chain(5)
    st = state(docs[0])
    with pytest.raises(RosterError) as exc:  # a missing link
        st.accept_chain([docs[1], docs[3], docs[4]], T0)
    assert exc.value.reason == "gap" and st.version == 1
    tampered = copy.deepcopy(docs[2])
    tampered["servers"]["rogue.example"] = entry("r", A_KEY)
    with pytest.raises(RosterError) as exc:  # a forged link
        st.accept_chain([docs[1], tampered, docs[3], docs[4]], T0)
    assert exc.value.reason == "signature" and st.version == 1
    other1 = build_roster(None, {}, T0 + 9, DAY, CITY, ROSTER_KEY)
    with pytest.raises(RosterError) as exc:  # a different history
        st.accept_chain([other1, build_roster(other1, {}, T0, DAY, CITY, ROSTER_KEY)], T0)
    assert exc.value.reason in ("fork", "chain") and st.version == 1
    with pytest.raises(RosterError) as exc:  # newest expired
        st.accept_chain(docs[1:], docs[4]["valid_until_ts"] + 1)
    assert exc.value.reason == "expired" and st.version == 1


def test_accept_chain_intermediate_expiry_does_not_matter():
    d1 = build_roster(None, SERVERS, T0, 10, CITY, ROSTER_KEY)
    d2 = build_roster(d1, SERVERS, T0 + 1, 10, CITY, ROSTER_KEY)
    d3 = build_roster(d2, SERVERS, T0 + 100, DAY, CITY, ROSTER_KEY)
    st = RosterState(ROSTER_KEY.verify_key, CITY)
    st.restore(d1)
    assert st.accept_chain([d2, d3], T0 + 200).version == 3


def test_old_verify_keys_exposed():
    servers = copy.deepcopy(SERVERS)
    servers["a.example"]["old_verify_keys"] = {
        "ed25519:a0": {"key": B_KEY.verify_key.encode(), "expired_ts": T0}
    }
    st = state(build_roster(None, servers, T0, DAY, CITY, ROSTER_KEY))
    vk, ts = st.old_keys("a.example")["ed25519:a0"]
    assert vk.public_bytes == B_KEY.verify_key.public_bytes and ts == T0
    assert "ed25519:a0" not in st.pinned_keys("a.example")
