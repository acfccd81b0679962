"""The city staff directory: only attestations that verify against the roster are listed."""

from __future__ import annotations

from support.deferreds import result_of

from federation.attestations import sign_attestation
from federation.keys import SigningKey
from federation.roster import RosterEntry
from gateway.directory.staff import CityStaff

A, B = "a.school.test", "b.school.test"
KEY_A, KEY_B = SigningKey.generate("a_1"), SigningKey.generate("b_1")
DAY = 24 * 3600 * 1000


class Clock:
    now = 1_800_000_000_000

    def time_ms(self) -> int:
        return self.now


class Roster:
    entries = {
        A: RosterEntry(A, "17", "School 17", "N", "school", {KEY_A.key_id: KEY_A.verify_key}),
        B: RosterEntry(B, "42", "Lyceum 42", "N", "school", {KEY_B.key_id: KEY_B.verify_key}),
    }

    def entry(self, server_name):
        return self.entries.get(server_name)


def att(user: str, role: str = "director", *, server=B, school="42", key=KEY_B, name=None):
    return sign_attestation(
        user_id=f"@{user}:{server}",
        role=role,
        server_name=server,
        school=school,
        key=key,
        issued_ts=Clock.now - DAY,
        lifetime_ms=7 * DAY,
        displayname=name,
    )


def test_only_verified_staff_of_the_answering_school_are_kept():
    clock = Clock()
    staff = CityStaff(roster=lambda: Roster(), clock=clock)
    tampered = att("boss", name="Boss")
    tampered["role"] = "deputy"
    docs = [
        att("anna", name="Anna Director"),
        att("ted", "teacher", name="Ted"),
        tampered,
        att("x", key=KEY_A),  # not B's key
        att("y", server=A, school="17", key=KEY_A),  # A's user, announced by B
        "junk",
    ]
    result_of(staff.on_stats(B, {"staff": docs}))
    assert [a.user_id for a in staff.current(B)] == ["@anna:" + B, "@ted:" + B]
    found, limited = staff.search("lyceum", 10)
    assert [a.user_id for a in found] == ["@anna:" + B, "@ted:" + B] and not limited
    found, limited = staff.search("anna", 10)
    assert [a.displayname for a in found] == ["Anna Director"]
    assert staff.search("lyceum", 1)[1] is True
    # Expired entries are not served; the next answer replaces the list.
    clock.now += 7 * DAY
    assert staff.current(B) == []
    result_of(staff.on_stats(B, {"staff": []}))
    assert staff.by_server[B] == []


def test_dashboard_school_page_lists_verified_staff():
    from gateway_app_support import GatewayHarness
    from test_gateway_dashboard import enrol_school

    h = GatewayHarness()
    assert h.login().status == 303
    enrol_school(h)
    page = h.request("GET", "/dashboard/schools/42").body
    assert "The city staff directory is not running" in page
    server = "school42.example"

    class Entry:
        def __init__(self, user, role, name):
            self.user_id, self.role, self.displayname = f"@{user}:{server}", role, name
            self.expiry_ts = h.now() + DAY

    staff = CityStaff(roster=lambda: None, clock=h.clock)
    staff.by_server[server] = [
        Entry("d", "director", "<b>Anna</b>"),
        Entry("t", "teacher", "Ted"),
    ]
    h.gw.staff = staff
    page = h.request("GET", "/dashboard/schools/42").body
    assert "&lt;b&gt;Anna&lt;/b&gt;" in page and "<b>Anna" not in page  # escaped
    assert "Director" in page and "Teacher" in page and f"@t:{server}" in page
