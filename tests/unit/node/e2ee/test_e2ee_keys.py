"""Key upload, query, claim and changes through the real HTTP layer (client-server API
"Key management API", keys.yaml)."""

from __future__ import annotations

import pytest

from e2ee_support import V3, Node, uid


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


def upload(dev, **body):
    return dev.call("POST", V3 + "/keys/upload", body)


def test_upload_answers_counts_and_query_returns_signed_keys(node):
    alice = node.device("alice")
    status, body = upload(
        alice,
        device_keys=alice.device_keys(),
        one_time_keys={f"signed_curve25519:AAA{i}": alice.otk(i) for i in range(3)},
    )
    assert (status, body) == (200, {"one_time_key_counts": {"signed_curve25519": 3}})
    bob = node.device("bob")
    status, body = bob.call("POST", V3 + "/keys/query", {"device_keys": {alice.user_id: []}})
    assert status == 200
    keys = body["device_keys"][alice.user_id][alice.device_id]
    assert keys["keys"] == alice.device_keys()["keys"]
    assert keys["signatures"] == alice.device_keys()["signatures"]
    assert "unsigned" in keys
    assert body["failures"] == {}
    # A named device that has no keys is simply missing.
    status, body = bob.call("POST", V3 + "/keys/query", {"device_keys": {alice.user_id: ["NOPE"]}})
    assert body["device_keys"] == {alice.user_id: {}}


def test_forged_or_foreign_device_keys_are_refused(node):
    alice, mallory = node.device("alice"), node.device("mallory")
    forged = alice.device_keys()
    forged["keys"][f"curve25519:{alice.device_id}"] = "bWFsbG9yeQ"  # changed after signing
    status, body = upload(alice, device_keys=forged)
    assert (status, body["errcode"]) == (400, "M_INVALID_SIGNATURE")
    # Mallory uploads Alice's (validly signed) keys under her own token.
    status, body = upload(mallory, device_keys=alice.device_keys())
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = mallory.call("POST", V3 + "/keys/query", {"device_keys": {alice.user_id: []}})
    assert body["device_keys"] == {alice.user_id: {}}


def test_one_time_key_is_claimed_once_then_the_fallback_key(node):
    alice, bob = node.device("alice"), node.device("bob")
    upload(
        alice,
        device_keys=alice.device_keys(),
        one_time_keys={"signed_curve25519:AAAA": alice.otk(1)},
        fallback_keys={"signed_curve25519:FFFF": dict(alice.otk(9), fallback=True)},
    )
    req = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}
    status, first = bob.call("POST", V3 + "/keys/claim", req)
    assert status == 200 and first["failures"] == {}
    assert list(first["one_time_keys"][alice.user_id][alice.device_id]) == [
        "signed_curve25519:AAAA"
    ]
    _, second = bob.call("POST", V3 + "/keys/claim", req)
    assert list(second["one_time_keys"][alice.user_id][alice.device_id]) == [
        "signed_curve25519:FFFF"
    ]
    # The fallback key stays claimable; /sync says it was used.
    _, third = bob.call("POST", V3 + "/keys/claim", req)
    assert list(third["one_time_keys"][alice.user_id][alice.device_id]) == [
        "signed_curve25519:FFFF"
    ]
    out = alice.sync()
    assert out["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert out["device_unused_fallback_key_types"] == []
    status, body = upload(alice)
    assert body == {"one_time_key_counts": {"signed_curve25519": 0}}


def test_bad_requests_get_matrix_errors(node):
    alice = node.device("alice")
    cases = [
        ("/keys/upload", {"one_time_keys": []}, 400, "M_BAD_JSON"),
        ("/keys/upload", {"one_time_keys": {"nocolon": "x"}}, 400, "M_BAD_JSON"),
        (
            "/keys/upload",
            {"one_time_keys": {f"curve25519:{i}": "k" for i in range(101)}},
            413,
            "M_TOO_LARGE",
        ),
        ("/keys/query", {}, 400, "M_MISSING_PARAM"),
        ("/keys/query", {"device_keys": {"bob": []}}, 400, "M_INVALID_PARAM"),
        ("/keys/query", {"device_keys": {uid("bob"): "x"}}, 400, "M_BAD_JSON"),
        (
            "/keys/query",
            {"device_keys": {f"@u{i}:{i}.test": [] for i in range(1001)}},
            413,
            "M_TOO_LARGE",
        ),
        ("/keys/claim", {"one_time_keys": {uid("bob"): {"D": 1}}}, 400, "M_BAD_JSON"),
    ]
    for path, body, status, errcode in cases:
        got_status, got = alice.call("POST", V3 + path, body)
        assert (got_status, got["errcode"]) == (status, errcode), (path, got)
    status, body = alice.call("GET", V3 + "/keys/changes?from=s1")
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = node.call("POST", V3 + "/keys/query", {"device_keys": {}})
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_remote_users_are_failures_without_federation(node):
    alice = node.device("alice")
    status, body = alice.call(
        "POST", V3 + "/keys/query", {"device_keys": {"@bob:elsewhere.test": []}}
    )
    assert status == 200 and body["failures"] == {"elsewhere.test": {}}
    assert "@bob:elsewhere.test" not in body["device_keys"]


def test_device_list_changes_for_room_members_only(node):
    alice, bob, carol = node.device("alice"), node.device("bob"), node.device("carol")
    node.room("alice", "bob")
    start_bob = bob.sync()["next_batch"]
    start_carol = carol.sync()["next_batch"]
    upload(alice, device_keys=alice.device_keys())
    out = bob.sync(start_bob)
    assert out["device_lists"]["changed"] == [alice.user_id]
    assert carol.sync(start_carol)["device_lists"] == {"changed": [], "left": []}
    status, body = bob.call("GET", V3 + f"/keys/changes?from={start_bob}&to={out['next_batch']}")
    assert (status, body) == (200, {"changed": [alice.user_id], "left": []})
    # After a restart the rows come from the database: the same answer.
    node.e2ee.device_lists._covered_from = None
    again = bob.call("GET", V3 + f"/keys/changes?from={start_bob}&to={out['next_batch']}")
    assert again == (status, body)
    # Carol joins a room with Alice: both see each other; leaving puts them in "left".
    room = node.room("alice", "carol")
    out = carol.sync(start_carol)
    assert alice.user_id in out["device_lists"]["changed"]
    node.leave("carol", room)
    again = carol.sync(out["next_batch"])
    assert again["device_lists"]["left"] == [alice.user_id]


def test_the_sweep_drops_keys_of_devices_deleted_behind_the_nodes_back(node):
    """A device deleted outside the running node (the CLI works on the database) is found
    by the periodic sweep; logouts are handled at once (test_e2ee_device_deleted.py)."""
    from sqlalchemy import delete, func, select
    from support.deferreds import result_of
    from twisted.internet import defer

    from schema.accounts import devices
    from schema.e2ee import e2ee_one_time_keys

    alice, bob = node.device("alice"), node.device("bob")
    node.room("alice", "bob")
    upload(
        alice,
        device_keys=alice.device_keys(),
        one_time_keys={f"signed_curve25519:K{i}": alice.otk(i) for i in range(5)},
    )
    since = bob.sync()["next_batch"]
    with node.db.engine.begin() as conn:
        conn.execute(delete(devices).where(devices.c.device_id == alice.device_id))
    # Not served from the moment the device is gone.
    _, body = bob.call("POST", V3 + "/keys/query", {"device_keys": {alice.user_id: []}})
    assert body["device_keys"] == {alice.user_id: {}}
    assert result_of(defer.ensureDeferred(node.e2ee.sweep.run_once())) == 1
    with node.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(e2ee_one_time_keys)).scalar() == 0
    assert bob.sync(since)["device_lists"]["changed"] == [alice.user_id]
    assert result_of(defer.ensureDeferred(node.e2ee.sweep.run_once())) == 0
