"""The gateway's roster service over an in-memory SQLite database and a fake clock:
publishing chained versions, enrolment with one-time tokens, revocation, key rotation, the
node side accepting what the gateway publishes, history verification, Synapse export."""

from __future__ import annotations

import copy

import pytest
import yaml
from sqlalchemy import select, update
from support.clocks import fake_clock
from support.db import InlineDB
from support.deferreds import result_of

from federation.enrolment import (
    EnrolmentError,
    build_enrolment_request,
    build_key_update_request,
    parse_token,
    verify_enrolment_response,
)
from federation.errors import InvalidParam, NotFound
from federation.keys import SigningKey
from federation.roster import (
    RosterError,
    RosterState,
    roster_hash,
    roster_key_fingerprint,
    server_entry,
    verify_roster,
)
from gateway.roster import RosterService, export_synapse
from schema.gateway import enrolment_tokens, roster_versions, schools

CITY = "city.example"
T0 = 1_700_000_000_000
HOUR_S = 3600
DAY_MS = 24 * 3600 * 1000
ROSTER_KEY = SigningKey("roster_1", bytes(range(32)))
CITY_KEY = SigningKey("c1", b"\x0c" * 32)
S42_KEY = SigningKey("k42", b"\x42" * 32)
S43_KEY = SigningKey("k43", b"\x43" * 32)


@pytest.fixture
def gw():
    db = InlineDB()
    clock = fake_clock(T0)
    svc = RosterService(db, clock, CITY, ROSTER_KEY, DAY_MS)
    svc.test_db, svc.test_clock = db, clock
    result_of(
        svc.add_server(
            CITY,
            school_id="city",
            name="City office",
            server_class="city",
            verify_keys=[CITY_KEY.verify_key],
        )
    )
    return svc


def now(gw):
    return gw.test_clock.time_ms()


def advance(gw, seconds):
    gw.test_clock.reactor.advance(seconds)


def enrol(gw, school_id, server, key, name=None):
    text = result_of(
        gw.create_enrolment_token(school_id, name or f"School {school_id}", "North", 3600_000)
    )
    tok = parse_token(text, now_ms=now(gw))
    body = build_enrolment_request(tok, server, [key], now(gw))
    return tok, result_of(gw.enrol(body))


def node_state():
    return RosterState(ROSTER_KEY.verify_key, CITY)


# --- publishing and reading --------------------------------------------------------------


def test_first_version_lists_the_city(gw):
    doc = result_of(gw.current())
    r = verify_roster(doc, ROSTER_KEY.verify_key, CITY)
    assert r.version == 1 and r.prev_sha256 is None
    assert r.servers[CITY].server_class == "city"
    assert r.servers[CITY].verify_keys == {"ed25519:c1": CITY_KEY.verify_key}
    assert r.valid_until_ts == T0 + DAY_MS
    # Re-adding the same server unchanged publishes nothing.
    again = result_of(
        gw.add_server(
            CITY,
            school_id="city",
            name="City office",
            server_class="city",
            verify_keys=[CITY_KEY.verify_key],
        )
    )
    assert again["version"] == 1


def test_publish_chains_versions_and_all_are_kept(gw):
    servers = result_of(gw.current())["servers"]
    for i in range(4):
        advance(gw, 10)
        doc = result_of(
            gw.publish(
                dict(
                    servers,
                    **{
                        f"x{i}.example": server_entry(
                            school_id=f"x{i}", name="X", verify_keys=[S42_KEY.verify_key]
                        )
                    },
                )
            )
        )
        assert doc["version"] == i + 2
    docs = [result_of(gw.get(v)) for v in range(1, 6)]
    for a, b in zip(docs, docs[1:], strict=False):
        assert b["prev_sha256"] == roster_hash(a)
    assert result_of(gw.get(6)) is None
    assert [d["version"] for d in result_of(gw.since(2))] == [3, 4, 5]
    assert [d["version"] for d in result_of(gw.since(0, limit=2))] == [1, 2]
    # A node that missed versions catches up with the chain the gateway serves.
    st = node_state()
    st.accept(docs[0], now(gw))
    assert st.accept_chain(result_of(gw.since(1)), now(gw)).version == 5
    assert st.is_member("x3.example")


def test_history_is_verified(gw):
    result_of(gw.publish(result_of(gw.current())["servers"]))
    result_of(gw.publish({}))
    hist = result_of(gw.history())
    assert [h["version"] for h in hist] == [3, 2, 1]
    assert all(h["signature_ok"] and h["chain_ok"] for h in hist)
    assert hist[0]["server_count"] == 0 and hist[2]["server_count"] == 1
    assert hist[0]["signer_key_id"] == "ed25519:roster_1"

    # Someone edits version 2 in the database: its signature fails, version 3's link too.
    def tamper(conn):
        row = conn.execute(
            select(roster_versions.c.doc).where(roster_versions.c.version == 2)
        ).first()
        conn.execute(
            update(roster_versions)
            .where(roster_versions.c.version == 2)
            .values(doc=row.doc.replace("City office", "Evil office"))
        )

    gw.test_db.run_sync(tamper)
    hist = {h["version"]: h for h in result_of(gw.history())}
    assert not hist[2]["signature_ok"] and hist[1]["signature_ok"] and hist[3]["signature_ok"]
    assert hist[3]["chain_ok"]  # the stored chain of hashes itself is intact ...
    st = node_state()  # ... but a node refuses the edited version
    st.accept(result_of(gw.get(1)), now(gw))
    with pytest.raises(RosterError):
        st.accept(result_of(gw.get(2)), now(gw))


def test_refresh_if_due(gw):
    assert result_of(gw.refresh_if_due()) is None
    advance(gw, 12 * HOUR_S)  # half of the one-day validity
    doc = result_of(gw.refresh_if_due())
    assert doc["version"] == 2 and doc["servers"] == result_of(gw.get(1))["servers"]
    assert doc["valid_until_ts"] == now(gw) + DAY_MS
    assert result_of(gw.refresh_if_due()) is None


def test_offline_key_serves_but_cannot_publish(gw):
    ro = RosterService(
        gw.test_db, gw.test_clock, CITY, None, roster_verify_key=ROSTER_KEY.verify_key
    )
    assert result_of(ro.current())["version"] == 1
    with pytest.raises(RosterError, match="offline") as exc:
        result_of(ro.publish({}))
    assert exc.value.reason == "key"
    assert result_of(ro.current())["version"] == 1


# --- enrolment ---------------------------------------------------------------------------


def test_enrolment_round_trip(gw):
    text = result_of(gw.create_enrolment_token("42", "Lyceum No. 42", "North", 3600_000))
    tok = parse_token(text, now_ms=now(gw))
    assert tok.school_id == "42" and tok.signer_name == CITY
    assert tok.roster_key_fingerprint == roster_key_fingerprint(ROSTER_KEY.verify_key)
    assert tok.roster_key_fingerprint == gw.fingerprint

    # The gateway stores the verifier, never the secret.
    row = gw.test_db.run_sync(lambda c: c.execute(select(enrolment_tokens)).first())
    assert row.token_id == tok.token_id and row.verifier == tok.verifier
    assert row.expires_ts == T0 + 3600_000 and row.used_ts is None
    school = gw.test_db.run_sync(
        lambda c: c.execute(select(schools).where(schools.c.school_id == "42")).first()
    )
    assert school.status == "pending" and school.name == "Lyceum No. 42"

    body = build_enrolment_request(tok, "s42.example", [S42_KEY], now(gw))
    doc = result_of(gw.enrol(body))
    assert doc["version"] == 2
    e = doc["servers"]["s42.example"]
    assert (e["school_id"], e["name"], e["district"], e["class"]) == (
        "42",
        "Lyceum No. 42",
        "North",
        "school",
    )
    assert e["verify_keys"] == {"ed25519:k42": {"key": S42_KEY.verify_key.encode()}}

    # The node checks the answer against its token and pins the roster key.
    resp = gw.enrolment_response(doc)
    key, roster = verify_enrolment_response(resp, tok, "s42.example", now(gw))
    st = RosterState(key, CITY)
    st.accept(resp["roster"], now(gw))
    assert st.is_member("s42.example") and st.is_member(CITY)
    assert st.pinned_keys("s42.example") == {"ed25519:k42": S42_KEY.verify_key}

    schools_ = {s["school_id"]: s for s in result_of(gw.list_schools())}
    assert schools_["42"]["status"] == "enrolled"
    assert schools_["42"]["server_name"] == "s42.example"
    row = gw.test_db.run_sync(lambda c: c.execute(select(enrolment_tokens)).first())
    assert row.used_ts == now(gw) and row.used_by == "s42.example"


def test_token_reuse_refused(gw):
    tok, _ = enrol(gw, "42", "s42.example", S42_KEY)
    body = build_enrolment_request(tok, "s43.example", [S43_KEY], now(gw))
    with pytest.raises(EnrolmentError, match="already been used") as exc:
        result_of(gw.enrol(body))
    assert exc.value.reason == "used"
    assert result_of(gw.current())["version"] == 2
    assert "s43.example" not in result_of(gw.current())["servers"]


def test_expired_token_refused(gw):
    text = result_of(gw.create_enrolment_token("42", "Lyceum", "North", 3600_000))
    tok = parse_token(text)
    advance(gw, HOUR_S + 1)
    with pytest.raises(EnrolmentError, match="expired") as exc:
        result_of(gw.enrol(build_enrolment_request(tok, "s42.example", [S42_KEY], now(gw))))
    assert exc.value.reason == "expired"
    assert result_of(gw.current())["version"] == 1


def test_wrong_secret_and_tampered_requests_do_not_consume_the_token(gw):
    text = result_of(gw.create_enrolment_token("42", "Lyceum", "North"))
    tok = parse_token(text)
    forged = copy.copy(tok)
    object.__setattr__(forged, "secret", b"\x00" * 32)
    with pytest.raises(EnrolmentError) as exc:
        result_of(gw.enrol(build_enrolment_request(forged, "rogue.example", [S43_KEY], now(gw))))
    assert exc.value.reason == "proof"
    tampered = build_enrolment_request(tok, "s42.example", [S42_KEY], now(gw))
    tampered["server_name"] = "rogue.example"
    with pytest.raises(EnrolmentError):
        result_of(gw.enrol(tampered))
    with pytest.raises(EnrolmentError) as exc:
        result_of(gw.enrol({"token_id": "nope"}))
    assert exc.value.http_status == 400
    # The real holder can still enrol.
    doc = result_of(gw.enrol(build_enrolment_request(tok, "s42.example", [S42_KEY], now(gw))))
    assert "s42.example" in doc["servers"] and "rogue.example" not in doc["servers"]


def test_conflicts(gw):
    enrol(gw, "42", "s42.example", S42_KEY)
    with pytest.raises(EnrolmentError, match="already enrolled") as exc:
        result_of(gw.create_enrolment_token("42", "Lyceum", "North"))
    assert exc.value.http_status == 409
    # Another school trying to take an enrolled server name.
    text = result_of(gw.create_enrolment_token("43", "Gymnasium", "South"))
    body = build_enrolment_request(parse_token(text), "s42.example", [S43_KEY], now(gw))
    with pytest.raises(EnrolmentError, match="already in the roster"):
        result_of(gw.enrol(body))
    body = build_enrolment_request(parse_token(text), CITY, [S43_KEY], now(gw))
    with pytest.raises(EnrolmentError, match="already in the roster"):
        result_of(gw.enrol(body))


@pytest.mark.parametrize(
    "args", [("", "Name", "D"), ("1", "", "D"), ("1", "N" * 300, "D"), ("x" * 65, "N", "D")]
)
def test_token_creation_validates(gw, args):
    with pytest.raises(InvalidParam):
        result_of(gw.create_enrolment_token(*args))
    with pytest.raises(InvalidParam):
        result_of(gw.create_enrolment_token("1", "N", "D", server_class="rogue"))
    with pytest.raises(InvalidParam):
        result_of(gw.create_enrolment_token("1", "N", "D", ttl_ms=0))


# --- revocation --------------------------------------------------------------------------


def test_revocation_publishes_a_version_without_the_school(gw):
    enrol(gw, "42", "s42.example", S42_KEY)
    enrol(gw, "43", "s43.example", S43_KEY)
    st = node_state()
    st.accept_chain(result_of(gw.since(0)), now(gw))
    assert st.is_member("s42.example") and st.version == 3

    advance(gw, 60)
    doc = result_of(gw.revoke(42))
    assert doc["version"] == 4
    assert "s42.example" not in doc["servers"] and "s43.example" in doc["servers"]
    st.accept(doc, now(gw))
    assert not st.is_member("s42.example") and st.is_member("s43.example")
    school = {s["school_id"]: s for s in result_of(gw.list_schools())}["42"]
    assert school["status"] == "revoked" and school["revoked_ts"] == now(gw)

    # A revoked school may be enrolled again with a new token.
    tok, doc = enrol(gw, "42", "s42.example", S42_KEY)
    assert doc["version"] == 5 and "s42.example" in doc["servers"]


def test_revoking_a_pending_school_voids_its_tokens(gw):
    text = result_of(gw.create_enrolment_token("44", "Pending", "East"))
    doc = result_of(gw.revoke("44"))
    assert doc["version"] == 1  # nothing to remove from the roster
    with pytest.raises(EnrolmentError) as exc:
        result_of(
            gw.enrol(build_enrolment_request(parse_token(text), "s44.example", [S43_KEY], now(gw)))
        )
    assert exc.value.reason == "used"
    with pytest.raises(NotFound):
        result_of(gw.revoke("999"))


# --- key rotation ------------------------------------------------------------------------


def test_key_rotation(gw):
    enrol(gw, "42", "s42.example", S42_KEY)
    new_key = SigningKey("k42b", b"\x99" * 32)
    advance(gw, 60)
    body = build_key_update_request("s42.example", [S42_KEY], [new_key], now(gw))
    doc = result_of(gw.update_keys("s42.example", body))
    e = doc["servers"]["s42.example"]
    assert e["verify_keys"] == {"ed25519:k42b": {"key": new_key.verify_key.encode()}}
    assert e["old_verify_keys"] == {
        "ed25519:k42": {"key": S42_KEY.verify_key.encode(), "expired_ts": now(gw)}
    }
    st = node_state()
    st.accept_chain(result_of(gw.since(0)), now(gw))
    assert st.pinned_keys("s42.example") == {"ed25519:k42b": new_key.verify_key}
    assert st.old_keys("s42.example")["ed25519:k42"][0] == S42_KEY.verify_key

    # The old key is no longer pinned: it cannot rotate again.
    body = build_key_update_request("s42.example", [S42_KEY], [S43_KEY], now(gw))
    with pytest.raises(EnrolmentError, match="not signed by any key the roster pins"):
        result_of(gw.update_keys("s42.example", body))
    # Reusing an old key ID is refused.
    body = build_key_update_request(
        "s42.example", [new_key], [SigningKey("k42", b"\x98" * 32)], now(gw)
    )
    with pytest.raises(EnrolmentError, match="used before"):
        result_of(gw.update_keys("s42.example", body))
    # The request must name the server it is for; non-members cannot rotate.
    body = build_key_update_request("s42.example", [new_key], [S43_KEY], now(gw))
    with pytest.raises(EnrolmentError, match="does not match"):
        result_of(gw.update_keys("s43.example", body))
    body = build_key_update_request("s43.example", [S43_KEY], [S43_KEY], now(gw))
    with pytest.raises(EnrolmentError, match="not in the roster"):
        result_of(gw.update_keys("s43.example", body))
    assert result_of(gw.current())["version"] == 3


def test_key_rotation_keeping_the_old_key(gw):
    enrol(gw, "42", "s42.example", S42_KEY)
    extra = SigningKey("k42c", b"\x97" * 32)
    body = build_key_update_request("s42.example", [S42_KEY], [S42_KEY, extra], now(gw))
    e = result_of(gw.update_keys("s42.example", body))["servers"]["s42.example"]
    assert set(e["verify_keys"]) == {"ed25519:k42", "ed25519:k42c"}
    assert "old_verify_keys" not in e


# --- export ------------------------------------------------------------------------------


def test_export_synapse_parses_with_the_right_keys(gw):
    enrol(gw, "42", "s42.example", S42_KEY)
    enrol(gw, "43", "s43.example", S43_KEY)
    doc = result_of(gw.current())
    text = gw.export_synapse(doc, CITY, CITY_KEY.verify_key)
    assert text.startswith("# Parta city roster version 3")
    cfg = yaml.safe_load(text)
    assert cfg["federation_domain_whitelist"] == [CITY, "s42.example", "s43.example"]
    assert cfg["trusted_key_servers"] == [
        {"server_name": CITY, "verify_keys": {"ed25519:c1": CITY_KEY.verify_key.encode()}}
    ]
    assert cfg["suppress_key_server_warning"] is True
    # After a revocation the export no longer lists the school.
    cfg = yaml.safe_load(export_synapse(result_of(gw.revoke("43")), CITY, [CITY_KEY.verify_key]))
    assert cfg["federation_domain_whitelist"] == [CITY, "s42.example"]
    with pytest.raises(ValueError):
        export_synapse(doc, CITY, [])
