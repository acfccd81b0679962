"""Role attestations: signed by a school's server key, checked against the city roster."""

from __future__ import annotations

import copy

import pytest

from federation.attestations import (
    AttestationError,
    sign_attestation,
    verify_attestation,
)
from federation.keys import SigningKey
from federation.roster import RosterEntry

DAY = 24 * 3600 * 1000
NOW = 1_800_000_000_000
A, B = "a.school.test", "b.school.test"
KEY_A, KEY_B = SigningKey.generate("a_1"), SigningKey.generate("b_1")


class Roster:
    def __init__(self, entries: dict[str, RosterEntry]) -> None:
        self.entries = entries

    def entry(self, server_name: str) -> RosterEntry | None:
        return self.entries.get(server_name)


def _entry(server: str, school_id: str, name: str, key: SigningKey, old=None) -> RosterEntry:
    return RosterEntry(
        server_name=server,
        school_id=school_id,
        name=name,
        district="North",
        server_class="school",
        verify_keys={key.key_id: key.verify_key},
        old_verify_keys=old or {},
    )


ROSTER = Roster({A: _entry(A, "17", "School 17", KEY_A), B: _entry(B, "42", "Lyceum 42", KEY_B)})


def _director_b(**kw) -> dict:
    args = dict(
        user_id="@k7:" + B,
        role="director",
        server_name=B,
        school="42",
        key=KEY_B,
        issued_ts=NOW - DAY,
        lifetime_ms=7 * DAY,
        displayname="Anna",
    )
    args.update(kw)
    return sign_attestation(**args)


def _reason(doc, roster=ROSTER, now=NOW) -> str:
    with pytest.raises(AttestationError) as exc:
        verify_attestation(doc, roster, now)
    assert exc.value.errcode == "M_FORBIDDEN"
    return exc.value.reason


def test_a_signed_attestation_verifies_against_the_roster():
    att = verify_attestation(_director_b(), ROSTER, NOW)
    assert (att.user_id, att.role, att.school, att.school_name) == (
        "@k7:" + B,
        "director",
        "42",
        "Lyceum 42",
    )
    assert att.displayname == "Anna"
    assert att.expiry_ts == NOW + 6 * DAY


@pytest.mark.parametrize(
    "field,value",
    [("role", "deputy"), ("user_id", "@other:" + B), ("displayname", "Boss"), ("expiry_ts", NOW)],
)
def test_tampered_content_is_refused(field, value):
    doc = _director_b()
    doc[field] = value
    assert _reason(doc) == "signature"


def test_expired_is_refused():
    assert _reason(_director_b(), now=NOW + 6 * DAY) == "expired"
    assert _reason(_director_b(issued_ts=NOW + DAY)) == "expired"  # issued in the future


def test_signed_by_another_school_is_refused():
    # School A signs a statement about school B's user: not its own user.
    doc = _director_b(key=KEY_A)
    doc["signatures"] = {A: doc["signatures"][B]}
    assert _reason(doc) == "foreign"
    # School A claims the user is on its server but names B's user.
    forged = _director_b()
    forged["server_name"] = A
    assert _reason(forged) == "foreign"
    # School A's key signing under B's name: not a key the roster pins for B.
    assert _reason(_director_b(key=KEY_A)) == "signature"


def test_unknown_school_and_wrong_school_id_are_refused():
    assert _reason(_director_b(), roster=Roster({A: ROSTER.entries[A]})) == "unknown_school"
    assert _reason(_director_b(school="17")) == "unknown_school"


def test_pupils_and_parents_are_never_attested():
    with pytest.raises(AttestationError):
        _director_b(role="pupil")
    doc = _director_b()
    doc["role"] = "parent"
    assert _reason(doc) == "role"


def test_former_key_counts_only_for_attestations_issued_before_it_expired():
    new = SigningKey.generate("b_2")
    rotated = Roster(
        {B: _entry(B, "42", "Lyceum 42", new, old={KEY_B.key_id: (KEY_B.verify_key, NOW)})}
    )
    assert verify_attestation(_director_b(), rotated, NOW).role == "director"
    assert _reason(_director_b(issued_ts=NOW), roster=rotated) == "signature"


@pytest.mark.parametrize(
    "doc",
    [None, [], "x", {"type": "m.other"}, {"type": "org.parta.role_attestation"}],
)
def test_malformed_is_refused(doc):
    assert _reason(doc) == "malformed"


def test_unsigned_and_oversized_are_refused():
    doc = _director_b()
    del doc["signatures"]
    assert _reason(doc) == "foreign"
    big = copy.deepcopy(_director_b())
    big["padding"] = "x" * 5000
    assert _reason(big) == "malformed"
