"""A real gateway and a real school node (subprocesses, loopback) through the CLI and HTTP:
``parta gateway enrol create`` -> ``parta node enrol`` -> the school is in a new roster
version whose signature and chain a node verifies (federation.roster); a reused and a
tampered token are refused; revocation publishes a version without the school; the school
can enrol again with a new token.  Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import time

import pytest

from federation.b64 import decode_base64, encode_base64
from federation.enrolment import TOKEN_PREFIX
from federation.roster import RosterState, roster_key_fingerprint, verify_roster
from gateway_e2e_support import (
    OFFICE_PASSWORD,
    create_token,
    init_gateway,
    init_school,
    roster_public_key,
)


@pytest.fixture(scope="module")
def city(db_backend, request, tmp_path_factory):
    pg = request.getfixturevalue("pg_server") if db_backend == "postgres" else None
    root = tmp_path_factory.mktemp(f"city-{db_backend}")
    gateway = init_gateway(str(root / "gateway"), database_url=pg.new_database() if pg else None)
    school = init_school(
        str(root / "school42"), "school42.e2e.test", database_url=pg.new_database() if pg else None
    )
    started = []
    try:
        started.append(gateway.start())
        started.append(school.start())
        yield gateway, school
    finally:
        codes = {p.kind: p.stop() for p in started}
    assert codes == {p.kind: 0 for p in started}, [p.log_tail() for p in started]


def node_state(gateway, version=1):
    status, doc = gateway.get(f"/_parta/v1/roster/{version}")
    assert status == 200
    state = RosterState(roster_public_key(gateway), gateway.server_name)
    state.accept(doc, doc["issued_ts"])
    return state


def catch_up(state, gateway):
    status, chain = gateway.get(f"/_parta/v1/roster?since={state.version}")
    assert status == 200 and chain["limited"] is False
    now = max(d["issued_ts"] for d in chain["versions"])
    state.accept_chain(chain["versions"], now)
    assert state.version == chain["latest_version"]
    return state


def tamper_secret(token: str) -> str:
    body = json.loads(decode_base64(token[len(TOKEN_PREFIX) :], urlsafe=True))
    secret = bytearray(decode_base64(body["secret"], urlsafe=True))
    secret[0] ^= 0xFF
    body["secret"] = encode_base64(bytes(secret), urlsafe=True)
    return TOKEN_PREFIX + encode_base64(json.dumps(body).encode(), urlsafe=True)


def test_gateway_serves_roster_version_1_with_itself(city):
    gateway, _ = city
    status, doc = gateway.get("/_parta/v1/roster")
    assert status == 200
    roster = verify_roster(doc, roster_public_key(gateway), gateway.server_name)
    assert roster.version == 1
    assert roster.servers[gateway.server_name].server_class == "city"


def test_enrol_reuse_tamper_revoke_reenrol(city):
    gateway, school = city
    state = node_state(gateway)
    token = create_token(gateway, "42", "Lyceum No. 42", "North")

    # A tampered token (secret changed) is refused by the gateway and consumes nothing.
    bad = school.cli("enrol", gateway.base_url, "--token", tamper_secret(token), check=False)
    assert bad.returncode == 1
    assert "proof does not match the token" in bad.stderr
    assert not os.path.exists(os.path.join(school.data_dir, "roster_key.json"))

    res = school.cli("enrol", gateway.base_url, "--token", token)
    assert "plain HTTP" in res.stderr and "loopback" in res.stderr
    assert (
        f"Enrolled {school.server_name} with the city gateway {gateway.server_name}" in res.stdout
    )

    # The school pinned the gateway's roster key (the fingerprint from the token) ...
    with open(os.path.join(school.data_dir, "roster_key.json")) as fh:
        pinned = json.load(fh)
    key = roster_public_key(gateway)
    assert pinned["key"] == key.encode() and pinned["signer_name"] == gateway.server_name
    assert pinned["fingerprint"] == roster_key_fingerprint(key)
    with open(os.path.join(school.data_dir, "roster.json")) as fh:
        stored = json.load(fh)

    # ... and the gateway serves a new version listing it, chained to version 1.
    catch_up(state, gateway)
    assert state.version == 2 and stored["version"] == 2
    entry = state.entry(school.server_name)
    assert (entry.school_id, entry.name, entry.district, entry.server_class) == (
        "42",
        "Lyceum No. 42",
        "North",
        "school",
    )
    with open(os.path.join(school.data_dir, "signing.key")) as fh:
        key_id = "ed25519:" + fh.read().split()[1]
    assert set(entry.verify_keys) == {key_id}

    # The same token again: refused.
    again = school.cli("enrol", gateway.base_url, "--token", token, check=False)
    assert again.returncode == 1 and "already been used" in again.stderr

    status, directory = gateway.get("/_parta/v1/directory/schools?q=lyceum")
    assert status == 200
    assert [(s["school_id"], s["server"], s["status"]) for s in directory["schools"]] == [
        ("42", school.server_name, "enrolled")
    ]

    # Revocation publishes a version without the school.
    out = gateway.cli("school", "revoke", "42").stdout
    assert f"published roster version 3 without {school.server_name}" in out
    catch_up(state, gateway)
    assert state.version == 3 and not state.is_member(school.server_name)
    assert gateway.get("/_parta/v1/directory/schools?q=lyceum")[1]["schools"] == []

    # A revoked school's old token stays dead; a new token brings it back.
    token2 = create_token(gateway, "42", "Lyceum No. 42", "North")
    school.cli("enrol", gateway.base_url, "--token", token2)
    catch_up(state, gateway)
    assert state.version == 4 and state.is_member(school.server_name)

    # The school node kept running throughout.
    assert school.get("/health")[0] == 200


def test_city_rooms_exist_with_read_only_announcements(city):
    gateway, _ = city
    status, login = gateway.post(
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "office"},
            "password": OFFICE_PASSWORD,
        },
    )
    assert status == 200, login
    token = login["access_token"]
    alias = f"%23announcements%3A{gateway.server_name}"
    # The rooms are created just after start-up: wait for them (bounded).
    deadline = time.monotonic() + 30
    while True:
        status, found = gateway.get(f"/_matrix/client/v3/directory/room/{alias}")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, found
    room_id = found["room_id"]
    status, power = gateway.get(
        f"/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels", token
    )
    assert status == 200 and power["events_default"] == 50
    status, rules = gateway.get(
        f"/_matrix/client/v3/rooms/{room_id}/state/m.room.join_rules", token
    )
    assert rules["join_rule"] == "public"
    alias = f"%23directors%3A{gateway.server_name}"
    status, found = gateway.get(f"/_matrix/client/v3/directory/room/{alias}")
    assert status == 200
    status, rules = gateway.get(
        f"/_matrix/client/v3/rooms/{found['room_id']}/state/m.room.join_rules", token
    )
    assert rules["join_rule"] == "invite"


def test_key_rotation_updates_the_roster_entry(city, db_backend, tmp_path):
    """``parta node keys rotate`` on an enrolled node: the gateway's next roster version pins
    the new key and lists the old one in ``old_verify_keys``."""
    if db_backend != "sqlite":
        pytest.skip("the gateway's key update is the same on PostgreSQL; SQLite is enough")
    gateway, _ = city
    # A second school: the CLI commands need no running node.
    school = init_school(str(tmp_path / "school7"), "school7.e2e.test")
    school.cli(
        "enrol", gateway.base_url, "--token", create_token(gateway, "7", "School No. 7", "South")
    )
    state = catch_up(node_state(gateway), gateway)
    with open(os.path.join(school.data_dir, "signing.key")) as fh:
        old_id = "ed25519:" + fh.read().split()[1]
    assert set(state.entry(school.server_name).verify_keys) == {old_id}
    enrolled_version = state.version

    res = school.cli("keys", "rotate")
    with open(os.path.join(school.data_dir, "signing.key")) as fh:
        new_id = "ed25519:" + fh.read().split()[1]
    assert new_id != old_id
    assert f"The city gateway now pins {new_id}" in res.stdout
    with open(os.path.join(school.data_dir, "old_signing_keys.json")) as fh:
        assert set(json.load(fh)) == {old_id}

    catch_up(state, gateway)
    assert state.version == enrolled_version + 1
    entry = state.entry(school.server_name)
    assert set(entry.verify_keys) == {new_id}
    assert set(state.old_keys(school.server_name)) == {old_id}
    # The node stored the new version as its last good roster.
    with open(os.path.join(school.data_dir, "roster.json")) as fh:
        assert json.load(fh)["version"] == state.version

    # The next rotation is authenticated by the key the roster now pins.
    school.cli("keys", "rotate")
    catch_up(state, gateway)
    assert state.version == enrolled_version + 2
    assert set(state.old_keys(school.server_name)) >= {old_id, new_id}
