"""Cross-signing keys and signatures (client-server API "Cross-signing",
cross_signing.yaml) through the real HTTP layer, UIA included."""

from __future__ import annotations

import pytest

from e2ee_support import PASSWORD, V3, Node
from federation.b64 import encode_base64
from federation.keys import SigningKey
from federation.signing import signed_bytes


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


class XKey:
    """A cross-signing key pair named by its public key (``ed25519:<public key>``)."""

    def __init__(self, seed: int) -> None:
        self.private = SigningKey("x", bytes([seed]) * 32)
        self.pub = self.private.verify_key.encode()
        self.key_id = f"ed25519:{self.pub}"

    def sign(self, obj: dict, user_id: str) -> dict:
        sig = encode_base64(self.private.sign(signed_bytes(obj)))
        obj.setdefault("signatures", {}).setdefault(user_id, {})[self.key_id] = sig
        return obj

    def obj(self, user_id: str, usage: str) -> dict:
        return {"user_id": user_id, "usage": [usage], "keys": {self.key_id: self.pub}}


def upload_cs(dev, body):
    return dev.call("POST", V3 + "/keys/device_signing/upload", body)


def keyset(user_id: str, base: int) -> tuple[XKey, XKey, XKey, dict]:
    master, ssk, usk = XKey(base), XKey(base + 1), XKey(base + 2)
    body = {
        "master_key": master.obj(user_id, "master"),
        "self_signing_key": master.sign(ssk.obj(user_id, "self_signing"), user_id),
        "user_signing_key": master.sign(usk.obj(user_id, "user_signing"), user_id),
    }
    return master, ssk, usk, body


def auth(dev):
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": dev.user_id},
        "password": PASSWORD,
    }


def test_first_upload_needs_no_auth_replacing_needs_password(node):
    alice, bob = node.device("alice"), node.device("bob")
    master, _ssk, _usk, body = keyset(alice.user_id, 10)
    assert upload_cs(alice, body) == (200, {})
    assert upload_cs(alice, body) == (200, {})  # the same keys again: idempotent
    _m2, _s2, _u2, other = keyset(alice.user_id, 20)
    status, challenge = upload_cs(alice, other)
    assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
    status, _ = upload_cs(alice, dict(other, auth=dict(auth(alice), session=challenge["session"])))
    assert status == 200
    # Others see master and self-signing keys, only Alice her user-signing key.
    _, seen = bob.call("POST", V3 + "/keys/query", {"device_keys": {alice.user_id: []}})
    assert seen["master_keys"][alice.user_id]["keys"] == other["master_key"]["keys"]
    assert alice.user_id in seen["self_signing_keys"]
    assert seen["user_signing_keys"] == {}
    _, own = alice.call("POST", V3 + "/keys/query", {"device_keys": {alice.user_id: []}})
    assert own["user_signing_keys"][alice.user_id]["keys"] == other["user_signing_key"]["keys"]


def test_bad_cross_signing_keys(node):
    alice = node.device("alice")
    master, ssk, _usk, body = keyset(alice.user_id, 30)
    unsigned = dict(body, self_signing_key=ssk.obj(alice.user_id, "self_signing"))
    status, err = upload_cs(alice, unsigned)
    assert (status, err["errcode"]) == (400, "M_INVALID_SIGNATURE")
    status, err = upload_cs(alice, {"self_signing_key": body["self_signing_key"]})
    assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
    wrong_user = dict(body, master_key=master.obj("@bob:school.test", "master"))
    status, err = upload_cs(alice, wrong_user)
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")


def test_signatures_upload_verifies_each_signature(node):
    alice, bob = node.device("alice"), node.device("bob")
    alice.call("POST", V3 + "/keys/upload", {"device_keys": alice.device_keys()})
    _master, ssk, usk, body = keyset(alice.user_id, 40)
    upload_cs(alice, body)
    bob_master, _bs, _bu, bob_body = keyset(bob.user_id, 50)
    upload_cs(bob, bob_body)
    good_device = ssk.sign(alice.device_keys(), alice.user_id)
    forged = alice.device_keys()
    forged["signatures"][alice.user_id][ssk.key_id] = encode_base64(b"\x00" * 64)
    bob_master_signed = usk.sign(bob_master.obj(bob.user_id, "master"), alice.user_id)
    status, out = alice.call(
        "POST",
        V3 + "/keys/signatures/upload",
        {
            alice.user_id: {alice.device_id: good_device},
            bob.user_id: {bob_master.pub: bob_master_signed, "UNKNOWN": bob_master_signed},
        },
    )
    assert status == 200
    assert out["failures"] == {
        bob.user_id: {"UNKNOWN": {"errcode": "M_NOT_FOUND", "error": "Unknown key"}}
    }
    status, out = alice.call(
        "POST", V3 + "/keys/signatures/upload", {alice.user_id: {alice.device_id: forged}}
    )
    assert out["failures"][alice.user_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"
    # Bob sees the self-signing signature on Alice's device; only Alice sees her signature
    # of Bob's master key.
    _, seen = bob.call(
        "POST", V3 + "/keys/query", {"device_keys": {alice.user_id: [], bob.user_id: []}}
    )
    assert (
        ssk.key_id
        in seen["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]
    )
    assert alice.user_id not in seen["master_keys"][bob.user_id].get("signatures", {})
    _, mine = alice.call("POST", V3 + "/keys/query", {"device_keys": {bob.user_id: []}})
    assert usk.key_id in mine["master_keys"][bob.user_id]["signatures"][alice.user_id]


def test_device_ids_and_cross_signing_key_ids_never_collide(node):
    alice = node.device("alice")
    master = XKey(70)
    # A client may choose its device ID at login: one named like the master key.
    status, body = node.login(alice.user_id, device_id=master.pub)
    assert status == 200
    status, err = node.call(
        "POST",
        V3 + "/keys/device_signing/upload",
        {"master_key": master.obj(alice.user_id, "master")},
        token=body["access_token"],
    )
    assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
