"""The city office dashboard in process: login (office role only, CSRF on the login form,
HttpOnly/SameSite=Strict cookie, hashed session store), the login guard, CSRF on every
form, enrolment token shown once, revocation with confirmation, escaping of hostile school
names on every page, status columns that say "—" without a data source."""

from __future__ import annotations

import hashlib
import re

import pytest
from support.clocks import fake_clock
from support.deferreds import result_of

from federation.enrolment import build_enrolment_request, parse_token
from federation.keys import SigningKey
from gateway.dashboard.html import Markup, escape, html
from gateway.dashboard.sessions import SESSION_COOKIE, SessionStore, parse_cookies
from gateway.sources import SchoolStatus
from gateway_app_support import GatewayHarness, hidden_value

EVIL = '<script>alert("x")</script>'
S42_KEY = SigningKey("k42", b"\x42" * 32)


@pytest.fixture
def h():
    return GatewayHarness()


@pytest.fixture
def logged(h):
    r = h.login()
    assert r.status == 303 and r.headers["Location"] == "/dashboard/"
    return h


def enrol_school(h, school_id="42", name="Lyceum No. 42", server="school42.example"):
    text = result_of(h.roster.create_enrolment_token(school_id, name, "North"))
    tok = parse_token(text, h.now())
    result_of(h.roster.enrol(build_enrolment_request(tok, server, [S42_KEY], h.now())))


# --- login -----------------------------------------------------------------------------------
def test_pages_redirect_to_login_without_a_session(h):
    for path in (
        "/dashboard/",
        "/dashboard/enrolment",
        "/dashboard/roster",
        "/dashboard/directory",
        "/dashboard/schools/city",
    ):
        r = h.request("GET", path)
        assert (r.status, r.headers["Location"]) == (303, "/dashboard/login"), path
    r = h.request("POST", "/dashboard/enrolment", form={"school_id": "1", "name": "x"})
    assert r.status == 303 and r.headers["Location"] == "/dashboard/login"
    assert result_of(h.roster.list_schools())[0]["school_id"] == "city"
    assert len(result_of(h.roster.list_schools())) == 1


def test_login_sets_a_strict_httponly_cookie_and_hashes_the_token(h):
    r = h.login()
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Secure"):
        assert attr in cookie
    token = h.cookies[SESSION_COOKIE]
    assert len(token) >= 40
    stored = list(h.gw.sessions._sessions)
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in stored
    page = h.request("GET", "/dashboard/")
    assert page.status == 200 and "@office:city.example" in page.body


def test_wrong_password_and_unknown_user_are_refused_alike(h):
    r1 = h.login(password="wrong")
    r2 = h.login(username="nobody")
    assert r1.status == r2.status == 403
    assert "Invalid username or password" in r1.body and "Invalid username" in r2.body
    assert SESSION_COOKIE not in h.cookies


def test_password_guessing_on_the_dashboard_is_locked_out(h):
    """Dashboard logins share the node's password lockout (docs/security.md): after the
    per-user number of wrong guesses even the right password waits, and the guesses also
    lock the office account's /login."""
    answers = [h.login(password=f"guess{i}").status for i in range(12)]
    assert answers[0] == 403 and 429 in answers, answers
    r = h.login()
    assert r.status == 429 and "Too many login attempts" in r.body
    assert SESSION_COOKIE not in h.cookies


def test_non_office_accounts_cannot_log_in(h):
    r = h.login(username="teacher")
    assert r.status == 403 and "Only city office accounts" in r.body
    assert SESSION_COOKIE not in h.cookies


def test_login_form_needs_its_csrf_token(h):
    h.request("GET", "/dashboard/login")
    r = h.request(
        "POST",
        "/dashboard/login",
        form={"username": "office", "password": "office password", "csrf": "x"},
    )
    assert r.status == 403 and "expired" in r.body
    h.cookies.clear()
    r = h.request(
        "POST",
        "/dashboard/login",
        form={"username": "office", "password": "office password", "csrf": ""},
    )
    assert r.status == 403 and SESSION_COOKIE not in h.cookies


def test_login_accepts_a_full_user_id(h):
    assert h.login(username="@office:city.example").status == 303


def test_logout_needs_csrf_and_ends_the_session(logged):
    h = logged
    token = h.cookies[SESSION_COOKIE]
    assert h.request("POST", "/dashboard/logout", form={"csrf": "nope"}).status == 403
    r = h.request("POST", "/dashboard/logout", form={"csrf": h.csrf("/dashboard/")})
    assert r.status == 303 and "Max-Age=0" in r.headers["Set-Cookie"]
    assert h.gw.sessions.get(token) is None
    h.cookies[SESSION_COOKIE] = token  # replaying the old cookie does not work
    assert h.request("GET", "/dashboard/").status == 303


def test_sessions_expire():
    clock = fake_clock(1_000_000)
    store = SessionStore(clock, 60_000)
    token, _ = store.create("@office:city.example")
    assert store.get(token) is not None
    clock.reactor.advance(61)
    assert store.get(token) is None and len(store) == 0


def test_pages_carry_security_headers(logged):
    r = logged.request("GET", "/dashboard/")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.content_type.startswith("text/html")


def test_stylesheet_is_served_locally(h):
    r = h.request("GET", "/dashboard/style.css")
    assert r.status == 200 and r.content_type.startswith("text/css") and "body" in r.body


# --- enrolment ---------------------------------------------------------------------------------
def test_create_token_shows_it_once(logged):
    h = logged
    r = h.request(
        "POST",
        "/dashboard/enrolment",
        form={
            "csrf": h.csrf(),
            "school_id": "42",
            "name": "Lyceum No. 42",
            "district": "North",
            "ttl_days": "7",
        },
    )
    assert r.status == 303 and r.headers["Location"].startswith("/dashboard/enrolment")
    page = h.request("GET", "/dashboard/enrolment").body
    tokens = re.findall(r"parta-enrol:v1:[A-Za-z0-9_-]+", page)
    assert tokens, page
    tok = parse_token(tokens[0], h.now())
    assert tok.school_id == "42"
    assert f"parta node enrol https://city.example --token {tokens[0]}" in page
    assert tok.expires_ts == h.now() + 7 * 24 * 3600 * 1000
    again = h.request("GET", "/dashboard/enrolment").body
    assert "parta-enrol:v1:" not in again
    assert "Lyceum No. 42" in again and "pending" in again


def test_create_token_needs_csrf(logged):
    h = logged
    r = h.request(
        "POST", "/dashboard/enrolment", form={"csrf": "forged", "school_id": "42", "name": "Lyceum"}
    )
    assert r.status == 403
    assert [s["school_id"] for s in result_of(h.roster.list_schools())] == ["city"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"school_id": "", "name": "x"}, "School ID"),
        ({"school_id": "42", "name": ""}, "School name"),
        ({"school_id": "42", "name": "x", "ttl_days": "0"}, "Valid for"),
        ({"school_id": "42", "name": "x", "ttl_days": "abc"}, "Valid for"),
    ],
)
def test_create_token_form_errors_keep_the_values(logged, fields, message):
    h = logged
    r = h.request("POST", "/dashboard/enrolment", form={"csrf": h.csrf(), **fields})
    assert r.status == 400 and message in r.body
    if fields.get("name"):
        assert f'value="{fields["name"]}"' in r.body


def test_token_for_an_enrolled_school_is_refused(logged):
    h = logged
    enrol_school(h)
    r = h.request(
        "POST",
        "/dashboard/enrolment",
        form={"csrf": h.csrf(), "school_id": "42", "name": "Lyceum No. 42"},
    )
    assert r.status == 409 and "already enrolled" in r.body


def test_revoke_asks_for_confirmation_then_publishes(logged):
    h = logged
    enrol_school(h)
    confirm = h.request("GET", "/dashboard/schools/42/revoke")
    assert confirm.status == 200 and "Yes, revoke Lyceum No. 42" in confirm.body
    assert result_of(h.roster.current())["version"] == 2  # nothing happened yet
    csrf = hidden_value(confirm.body, "csrf")
    assert h.request("POST", "/dashboard/schools/42/revoke", form={"csrf": "bad"}).status == 403
    r = h.request("POST", "/dashboard/schools/42/revoke", form={"csrf": csrf})
    assert r.status == 303
    doc = result_of(h.roster.current())
    assert doc["version"] == 3 and "school42.example" not in doc["servers"]
    page = h.request("GET", "/dashboard/enrolment").body
    assert "roster version 3 published without it" in page
    assert [d["version"] for d in h.changes] == [3]


def test_revoke_unknown_school(logged):
    h = logged
    assert h.request("GET", "/dashboard/schools/77/revoke").status == 404
    r = h.request("POST", "/dashboard/schools/77/revoke", form={"csrf": h.csrf()})
    assert r.status == 404 and "not known" in r.body


# --- pages -------------------------------------------------------------------------------------
def test_schools_page_lists_schools_and_dashes_without_status_source(logged):
    h = logged
    enrol_school(h)
    page = h.request("GET", "/dashboard/").body
    assert "Lyceum No. 42" in page and "school42.example" in page
    row = page[page.index("Lyceum No. 42") :]
    row = row[: row.index("</tr>")]
    assert row.count("\u2014") >= 5  # contact, queue, ack, users, rooms
    assert "enrolled" in row


def test_schools_page_shows_status_from_the_source(logged):
    h = logged
    enrol_school(h)

    class Source:
        async def status_of(self, names):
            return {
                "school42.example": SchoolStatus(
                    last_contact_ts=h.now(),
                    outbound_queue_depth=7,
                    roster_version_acked=2,
                    user_count=311,
                    room_count=45,
                    report_count=3,
                )
            }

    h.gw.status_source = Source()
    page = h.request("GET", "/dashboard/").body
    row = page[page.index("Lyceum No. 42") :]
    row = row[: row.index("</tr>")]
    for value in (">7<", ">2<", ">311<", ">45<", ">3<", "2023-11-14 22:13 UTC"):
        assert value in row
    assert '<th class="num">Reports</th>' in page


def test_school_detail_shows_keys_and_rooms_source(logged):
    h = logged
    enrol_school(h)
    page = h.request("GET", "/dashboard/schools/42").body
    assert S42_KEY.key_id in page and S42_KEY.verify_key.encode() in page
    assert "Not gathered yet" in page

    class Rooms:
        async def public_rooms(self, server):
            return [
                {
                    "room_id": "!r:school42.example",
                    "name": "Chess club",
                    "canonical_alias": "#chess:school42.example",
                    "num_joined_members": 12,
                }
            ]

    h.gw.public_rooms = Rooms()
    page = h.request("GET", "/dashboard/schools/42").body
    assert "Chess club" in page and "#chess:school42.example" in page
    assert h.request("GET", "/dashboard/schools/nope").status == 404


def test_roster_history_shows_verification(logged):
    h = logged
    enrol_school(h)
    page = h.request("GET", "/dashboard/roster").body
    assert page.count("\u2713 verified") == 2 and page.count("\u2713 chained") == 2
    assert "FAILED" not in page
    # Tamper with a stored version: the page says so.
    from sqlalchemy import update

    from schema.gateway import roster_versions

    doc = result_of(h.roster.get(1))
    doc["servers"]["city.example"]["name"] = "Tampered"
    import json

    with h.db.engine.begin() as conn:
        conn.execute(
            update(roster_versions)
            .where(roster_versions.c.version == 1)
            .values(doc=json.dumps(doc))
        )
    page = h.request("GET", "/dashboard/roster").body
    assert "\u2717 FAILED" in page
    one = h.request("GET", "/dashboard/roster/2")
    assert one.status == 200 and "school42.example" in one.body
    assert h.request("GET", "/dashboard/roster/9").status == 404


def test_directory_search_page(logged):
    h = logged
    enrol_school(h)
    result_of(h.roster.create_enrolment_token("43", "Gymnasium 43", "South"))
    page = h.request("GET", "/dashboard/directory?q=south").body
    assert "Gymnasium 43" in page and "Lyceum No. 42" not in page
    page = h.request("GET", "/dashboard/directory?q=zzz").body
    assert "No school matches" in page


def test_hostile_names_are_escaped_everywhere(logged):
    h = logged
    result_of(h.roster.create_enrolment_token("x1", EVIL, EVIL))
    for path in (
        "/dashboard/",
        "/dashboard/enrolment",
        "/dashboard/directory?q=script",
        "/dashboard/schools/x1",
        "/dashboard/schools/x1/revoke",
    ):
        page = h.request("GET", path).body
        assert "<script>" not in page, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page, path
    page = h.request("GET", '/dashboard/directory?q="><script>').body
    assert "<script>" not in page and 'value="&quot;&gt;&lt;script&gt;"' in page
    page = h.request("GET", "/dashboard/schools/%3Cscript%3E").body
    assert "<script>" not in page


def test_html_helper_escapes_values_but_not_markup():
    out = html('<a title="{t}">{b}</a>', t='"onmouseover="x', b=Markup("<b>ok</b>"))
    assert out == '<a title="&quot;onmouseover=&quot;x"><b>ok</b></a>'
    assert escape("'") == "&#x27;"
    assert html("{x}", x="{y}") == "{y}"


def test_cookie_parsing():
    assert parse_cookies("a=1; b=2; a=3") == {"a": "1", "b": "2"}
    assert parse_cookies(None) == {} and parse_cookies("junk") == {}
