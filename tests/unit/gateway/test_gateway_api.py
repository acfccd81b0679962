"""The gateway's /_parta/v1 HTTP API (gateway/api.py) in process: serving the signed roster
and its chain, enrolment over HTTP (refusals as Matrix errors, never consuming the token),
key rotation and the directory JSON with its anonymous/office views."""

from __future__ import annotations

import copy

import pytest
from support.deferreds import result_of

from federation.enrolment import (
    build_enrolment_request,
    build_key_update_request,
    make_token,
    parse_token,
    verify_enrolment_response,
)
from federation.keys import SigningKey
from federation.roster import RosterState, verify_roster
from gateway_app_support import CITY, ROSTER_KEY, GatewayHarness

S42_KEY = SigningKey("k42", b"\x42" * 32)
S43_KEY = SigningKey("k43", b"\x43" * 32)


@pytest.fixture
def h():
    return GatewayHarness()


def token_for(h, school_id="42", name="Lyceum No. 42", district="North"):
    text = result_of(h.roster.create_enrolment_token(school_id, name, district))
    return text, parse_token(text, h.now())


def enrol(h, server="school42.example", key=S42_KEY, school_id="42", **kw):
    text, tok = token_for(h, school_id, **kw)
    body = build_enrolment_request(tok, server, [key], h.now())
    return tok, h.request("POST", "/_parta/v1/enrol", json_body=body)


# --- roster ----------------------------------------------------------------------------------
def test_current_roster_is_the_signed_document(h):
    r = h.request("GET", "/_parta/v1/roster")
    assert r.status == 200
    roster = verify_roster(r.body, ROSTER_KEY.verify_key, CITY)
    assert roster.version == 1 and set(roster.servers) == {CITY}
    assert roster.servers[CITY].server_class == "city"


def test_no_roster_yet_is_404():
    h = GatewayHarness(with_roster=False)
    r = h.request("GET", "/_parta/v1/roster")
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND")
    assert h.request("GET", "/_parta/v1/roster?since=0").body["versions"] == []


def test_versions_and_since_chain_verify_with_a_node_state(h):
    enrol(h)
    enrol(h, "school43.example", S43_KEY, "43")
    state = RosterState(ROSTER_KEY.verify_key, CITY)
    state.accept(h.request("GET", "/_parta/v1/roster/1").body, h.now())
    r = h.request("GET", "/_parta/v1/roster?since=1")
    assert r.status == 200 and r.body["latest_version"] == 3 and r.body["limited"] is False
    assert [d["version"] for d in r.body["versions"]] == [2, 3]
    state.accept_chain(r.body["versions"], h.now())
    assert state.version == 3
    assert set(state.servers) == {CITY, "school42.example", "school43.example"}
    assert h.request("GET", "/_parta/v1/roster?since=3").body["versions"] == []


@pytest.mark.parametrize(
    "path, status, errcode",
    [
        ("/_parta/v1/roster/0", 400, "M_INVALID_PARAM"),
        ("/_parta/v1/roster/abc", 400, "M_INVALID_PARAM"),
        ("/_parta/v1/roster/-1", 400, "M_INVALID_PARAM"),
        ("/_parta/v1/roster/99", 404, "M_NOT_FOUND"),
        ("/_parta/v1/roster/99999999999999999999", 400, "M_INVALID_PARAM"),
        ("/_parta/v1/roster?since=x", 400, "M_INVALID_PARAM"),
        ("/_parta/v1/roster?since=-2", 400, "M_INVALID_PARAM"),
    ],
)
def test_bad_roster_requests_are_clear_errors(h, path, status, errcode):
    r = h.request("GET", path)
    assert (r.status, r.body["errcode"]) == (status, errcode)
    assert r.body["error"]


def test_post_to_roster_is_405(h):
    assert h.request("POST", "/_parta/v1/roster", json_body={}).status == 405


# --- enrolment -------------------------------------------------------------------------------
def test_enrol_publishes_a_version_listing_the_school(h):
    tok, r = enrol(h)
    assert r.status == 200
    key, roster = verify_enrolment_response(r.body, tok, "school42.example", h.now())
    assert key.public_bytes == ROSTER_KEY.verify_key.public_bytes
    assert roster.version == 2
    e = roster.servers["school42.example"]
    assert (e.school_id, e.name, e.district, e.server_class) == (
        "42",
        "Lyceum No. 42",
        "North",
        "school",
    )
    assert set(e.verify_keys) == {S42_KEY.key_id}
    assert h.request("GET", "/_parta/v1/roster").body["version"] == 2
    assert [d["version"] for d in h.changes] == [2]


def test_reused_token_is_refused(h):
    text, tok = token_for(h)
    body = build_enrolment_request(tok, "school42.example", [S42_KEY], h.now())
    assert h.request("POST", "/_parta/v1/enrol", json_body=body).status == 200
    again = build_enrolment_request(tok, "other.example", [S43_KEY], h.now())
    r = h.request("POST", "/_parta/v1/enrol", json_body=again)
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN")
    assert "already been used" in r.body["error"]
    assert h.request("GET", "/_parta/v1/roster").body["version"] == 2


def test_tampered_token_is_refused_and_not_consumed(h):
    text, tok = token_for(h)
    forged = make_token(
        school_id="42",
        roster_verify_key=ROSTER_KEY.verify_key,
        signer_name=CITY,
        expires_ts=tok.expires_ts,
        token_id=tok.token_id,
        secret=b"\x00" * 32,
    )
    body = build_enrolment_request(forged, "evil.example", [S43_KEY], h.now())
    r = h.request("POST", "/_parta/v1/enrol", json_body=body)
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN")
    assert "proof" in r.body["error"]
    # The real token still works: the refusal did not consume it.
    good = build_enrolment_request(tok, "school42.example", [S42_KEY], h.now())
    assert h.request("POST", "/_parta/v1/enrol", json_body=good).status == 200


def test_request_not_signed_by_the_registered_key_is_refused(h):
    text, tok = token_for(h)
    body = build_enrolment_request(tok, "school42.example", [S42_KEY], h.now())
    body["verify_keys"] = {S43_KEY.key_id: {"key": S43_KEY.verify_key.encode()}}
    r = h.request("POST", "/_parta/v1/enrol", json_body=body)
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"


def test_expired_token_is_refused(h):
    text, tok = token_for(h)
    h.advance(2 * 24 * 3600)
    body = build_enrolment_request(tok, "school42.example", [S42_KEY], h.now())
    r = h.request("POST", "/_parta/v1/enrol", json_body=body)
    assert r.status == 403 and "expired" in r.body["error"]


def test_unknown_token_is_refused(h):
    tok = make_token(
        school_id="42",
        roster_verify_key=ROSTER_KEY.verify_key,
        signer_name=CITY,
        expires_ts=h.now() + 10_000,
    )
    body = build_enrolment_request(tok, "school42.example", [S42_KEY], h.now())
    r = h.request("POST", "/_parta/v1/enrol", json_body=body)
    assert r.status == 403 and "Unknown enrolment token" in r.body["error"]


@pytest.mark.parametrize(
    "raw, errcode",
    [
        (b"not json", "M_NOT_JSON"),
        (b"[1, 2]", "M_BAD_JSON"),
        (b'{"token_id": "x"}', "M_BAD_JSON"),
        (b'{"server_name": "a b", "ts": 1, "verify_keys": {}}', "M_BAD_JSON"),
    ],
)
def test_malformed_enrolment_bodies_are_400(h, raw, errcode):
    r = h.request("POST", "/_parta/v1/enrol", raw=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.body["errcode"] == errcode


def test_second_server_for_an_enrolled_school_is_409(h):
    enrol(h)
    # A new token for an enrolled school is refused at creation, so forge the situation:
    # enrol another school with the same server name.
    text, tok = token_for(h, "43", "Other")
    body = build_enrolment_request(tok, "school42.example", [S43_KEY], h.now())
    r = h.request("POST", "/_parta/v1/enrol", json_body=body)
    assert r.status == 409 and "already in the roster" in r.body["error"]


# --- key rotation ----------------------------------------------------------------------------
def test_key_update_signed_by_the_pinned_key_replaces_keys(h):
    enrol(h)
    new = SigningKey("k42b", b"\x99" * 32)
    body = build_key_update_request("school42.example", [S42_KEY], [new], h.now())
    r = h.request("POST", "/_parta/v1/keys/update", json_body=body)
    assert r.status == 200
    roster = verify_roster(r.body["roster"], ROSTER_KEY.verify_key, CITY)
    e = roster.servers["school42.example"]
    assert set(e.verify_keys) == {"ed25519:k42b"}
    assert set(e.old_verify_keys) == {S42_KEY.key_id}


def test_key_update_by_an_outsider_is_refused(h):
    enrol(h)
    thief = SigningKey("k42c", b"\x77" * 32)
    body = build_key_update_request("school42.example", [thief], [thief], h.now())
    r = h.request("POST", "/_parta/v1/keys/update", json_body=body)
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN")
    assert h.request("GET", "/_parta/v1/roster").body["version"] == 2


def test_key_update_needs_a_server_name(h):
    r = h.request("POST", "/_parta/v1/keys/update", json_body={"server_name": 5})
    assert (r.status, r.body["errcode"]) == (400, "M_BAD_JSON")
    body = build_key_update_request("nobody.example", [S42_KEY], [S42_KEY], h.now())
    r = h.request("POST", "/_parta/v1/keys/update", json_body=body)
    assert r.status == 403 and "not in the roster" in r.body["error"]


# --- directory -------------------------------------------------------------------------------
def test_directory_anonymous_sees_enrolled_schools_only(h):
    enrol(h)
    token_for(h, "43", "Gymnasium 43", "South")  # pending
    r = h.request("GET", "/_parta/v1/directory/schools")
    assert r.status == 200
    assert {s["server"] for s in r.body["schools"]} == {CITY, "school42.example"}
    assert all(s["status"] == "enrolled" for s in r.body["schools"])


def test_directory_office_sees_pending_and_revoked(h):
    enrol(h)
    token_for(h, "43", "Gymnasium 43", "South")
    result_of(h.roster.revoke("42"))
    r = h.request("GET", "/_parta/v1/directory/schools", token="tok-office")
    by_id = {s["school_id"]: s for s in r.body["schools"]}
    assert by_id["42"]["status"] == "revoked" and by_id["43"]["status"] == "pending"
    assert r.body["total"] == 3
    # A teacher's token is not the office's: the public view.
    r = h.request("GET", "/_parta/v1/directory/schools", token="tok-teacher")
    assert {s["school_id"] for s in r.body["schools"]} == {"city"}


def test_directory_search(h):
    enrol(h, name="Lyceum No. 42", district="North")
    enrol(h, "school43.example", S43_KEY, "43", name="Gymnasium 43", district="South")

    def q(s):
        return {
            x["school_id"]
            for x in h.request("GET", f"/_parta/v1/directory/schools?q={s}").body["schools"]
        }

    assert q("lyceum") == {"42"}
    assert q("south") == {"43"}
    assert q("school43") == {"43"}
    assert q("lyceum+north") == {"42"}
    assert q("nothing") == set()


def test_directory_refuses_long_query_and_bad_token(h):
    r = h.request("GET", "/_parta/v1/directory/schools?q=" + "a" * 101)
    assert (r.status, r.body["errcode"]) == (400, "M_INVALID_PARAM")
    r = h.request("GET", "/_parta/v1/directory/schools", token="bogus")
    assert r.status == 401


def test_roster_documents_are_copies(h):
    a = h.request("GET", "/_parta/v1/roster").body
    b = copy.deepcopy(a)
    a["servers"].clear()
    assert h.request("GET", "/_parta/v1/roster").body == b
