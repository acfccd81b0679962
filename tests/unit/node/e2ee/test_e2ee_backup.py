"""Server-side key backups: the 15 /room_keys operations (key_backup.yaml) through the
real HTTP layer."""

from __future__ import annotations

import pytest

from e2ee_support import V3, Node

ALG = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:school.test"


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


def key(first=0, forwarded=0, verified=False, tag="a"):
    return {
        "first_message_index": first,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": {"ciphertext": tag},
    }


def test_versions_lifecycle(node):
    alice, bob = node.device("alice"), node.device("bob")
    status, err = alice.call("GET", V3 + "/room_keys/version")
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    status, body = alice.call(
        "POST", V3 + "/room_keys/version", {"algorithm": ALG, "auth_data": {"public_key": "p"}}
    )
    assert (status, body) == (200, {"version": "1"})
    status, info = alice.call("GET", V3 + "/room_keys/version")
    assert status == 200
    assert info == {
        "algorithm": ALG,
        "auth_data": {"public_key": "p"},
        "count": 0,
        "etag": info["etag"],
        "version": "1",
    }
    assert isinstance(info["etag"], str)
    assert bob.call("GET", V3 + "/room_keys/version")[0] == 404  # per user
    assert alice.call("GET", V3 + "/room_keys/version/1")[1]["version"] == "1"
    assert alice.call("GET", V3 + "/room_keys/version/7")[0] == 404
    assert alice.call("GET", V3 + "/room_keys/version/abc")[0] == 404
    status, _ = alice.call(
        "PUT", V3 + "/room_keys/version/1", {"algorithm": ALG, "auth_data": {"public_key": "q"}}
    )
    assert status == 200
    assert alice.call("GET", V3 + "/room_keys/version/1")[1]["auth_data"] == {"public_key": "q"}
    status, err = alice.call(
        "PUT", V3 + "/room_keys/version/1", {"algorithm": "other", "auth_data": {}}
    )
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    status, err = alice.call(
        "PUT", V3 + "/room_keys/version/1", {"algorithm": ALG, "auth_data": {}, "version": "2"}
    )
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
    assert alice.call("DELETE", V3 + "/room_keys/version/1") == (200, {})
    assert alice.call("DELETE", V3 + "/room_keys/version/1")[0] == 404
    _, body = alice.call("POST", V3 + "/room_keys/version", {"algorithm": ALG, "auth_data": {}})
    assert body == {"version": "2"}  # numbers are never reused
    status, err = alice.call("POST", V3 + "/room_keys/version", {"algorithm": ALG})
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")


def test_keys_put_get_delete_and_replacement_rules(node):
    alice = node.device("alice")
    alice.call("POST", V3 + "/room_keys/version", {"algorithm": ALG, "auth_data": {}})
    path = V3 + f"/room_keys/keys/{ROOM}/s1?version=1"
    status, body = alice.call("PUT", path, key(first=5, tag="first"))
    assert status == 200 and body["count"] == 1
    etag = body["etag"]
    # Worse keys do not replace: same verification, higher index.
    _, body = alice.call("PUT", path, key(first=9, tag="worse"))
    assert body == {"etag": etag, "count": 1}
    assert alice.call("GET", path)[1]["session_data"] == {"ciphertext": "first"}
    # A lower first_message_index wins; then verified wins over unverified even if later.
    alice.call("PUT", path, key(first=2, tag="lower"))
    assert alice.call("GET", path)[1]["session_data"] == {"ciphertext": "lower"}
    alice.call("PUT", path, key(first=8, verified=True, tag="verified"))
    assert alice.call("GET", path)[1]["session_data"] == {"ciphertext": "verified"}
    alice.call("PUT", path, key(first=8, verified=True, forwarded=0, tag="same"))
    assert alice.call("GET", path)[1]["session_data"] == {"ciphertext": "verified"}
    # Room and all-keys variants.
    status, body = alice.call(
        "PUT", V3 + f"/room_keys/keys/{ROOM}?version=1", {"sessions": {"s2": key(tag="s2")}}
    )
    assert body["count"] == 2 and body["etag"] != etag
    status, body = alice.call(
        "PUT",
        V3 + "/room_keys/keys?version=1",
        {"rooms": {"!other:school.test": {"sessions": {"s3": key()}}}},
    )
    assert body["count"] == 3
    _, room = alice.call("GET", V3 + f"/room_keys/keys/{ROOM}?version=1")
    assert set(room["sessions"]) == {"s1", "s2"}
    _, everything = alice.call("GET", V3 + "/room_keys/keys?version=1")
    assert set(everything["rooms"]) == {ROOM, "!other:school.test"}
    assert alice.call("GET", V3 + "/room_keys/keys/!none:school.test?version=1")[1] == {
        "sessions": {}
    }
    assert alice.call("GET", V3 + f"/room_keys/keys/{ROOM}/nope?version=1")[0] == 404
    assert alice.call("DELETE", path)[1]["count"] == 2
    assert alice.call("DELETE", V3 + f"/room_keys/keys/{ROOM}?version=1")[1]["count"] == 1
    assert alice.call("DELETE", V3 + "/room_keys/keys?version=1")[1]["count"] == 0


def test_wrong_version_and_bad_input(node):
    alice, bob = node.device("alice"), node.device("bob")
    alice.call("POST", V3 + "/room_keys/version", {"algorithm": ALG, "auth_data": {}})
    alice.call("POST", V3 + "/room_keys/version", {"algorithm": ALG, "auth_data": {}})
    status, err = alice.call("PUT", V3 + f"/room_keys/keys/{ROOM}/s?version=1", key())
    assert (status, err["errcode"], err["current_version"]) == (
        403,
        "M_WRONG_ROOM_KEYS_VERSION",
        "2",
    )
    status, err = alice.call("PUT", V3 + f"/room_keys/keys/{ROOM}/s?version=9", key())
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    status, err = alice.call("PUT", V3 + f"/room_keys/keys/{ROOM}/s", key())
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
    status, err = alice.call(
        "PUT", V3 + f"/room_keys/keys/{ROOM}/s?version=2", dict(key(), is_verified="yes")
    )
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")
    big = dict(key(), session_data={"c": "x" * 20_000})
    status, err = alice.call("PUT", V3 + f"/room_keys/keys/{ROOM}/s?version=2", big)
    assert (status, err["errcode"]) == (413, "M_TOO_LARGE")
    # Bob cannot read or write Alice's backup: he has none of his own.
    assert bob.call("GET", V3 + "/room_keys/keys?version=2")[0] == 404
    assert bob.call("PUT", V3 + f"/room_keys/keys/{ROOM}/s?version=2", key())[0] == 404
