"""E2EE across two in-process nodes: a remote server queries and claims our users' keys
(``user/keys/query``, ``user/keys/claim``, ``user/devices``), our clients' queries reach
other servers, and to-device EDUs are delivered (server-server API "End-to-End
Encryption", "Send-to-device messaging", "Device Management")."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "federation"))

from support.deferreds import result_of

import schema.e2ee  # noqa: F401 - registers the tables before InlineDB creates them
from federation.b64 import encode_base64
from federation.keys import SigningKey
from federation.signing import sign_json
from inprocess_federation_support import FedNode, Network
from node.accounts.service import AccountsService
from node.e2ee.service import E2eeService
from node.federation import e2ee_edus
from node.federation.outbound.e2ee_link import RemoteKeysLink


def _e2ee(node: FedNode) -> E2eeService:
    svc = E2eeService(
        db=node.db,
        clock=node.clock,
        server_name=node.server_name,
        rooms=node.rooms,
        notifier=node.notifier,
    )
    node.fed.fctx.e2ee = svc
    node.fed.edus.handlers.update(e2ee_edus.handlers(svc))
    svc.attach_federation(RemoteKeysLink(client=node.client, sender=None))
    return svc


def _setup():
    net = Network()
    a, b = FedNode(net, "a.test"), FedNode(net, "b.test")
    ea, eb = _e2ee(a), _e2ee(b)
    accounts = AccountsService(a.ctx)
    alice = result_of(accounts.create_user("alice", None, "teacher"))
    _, device = result_of(accounts.issue_token(alice, "PHONE", "Alice's phone", "127.0.0.1"))
    key = SigningKey(device, b"\x05" * 32)
    keys = sign_json(
        {
            "user_id": alice,
            "device_id": device,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
            "keys": {f"ed25519:{device}": key.verify_key.encode()},
        },
        alice,
        key,
    )
    otk = sign_json({"key": encode_base64(b"o" * 32)}, alice, key)
    result_of(
        ea.keys.upload(
            alice, device, {"device_keys": keys, "one_time_keys": {"signed_curve25519:A1": otk}}
        )
    )
    return a, b, ea, eb, alice, device, keys


def test_remote_query_and_claim_get_the_uploaded_keys_once():
    a, b, ea, eb, alice, device, keys = _setup()
    out = result_of(eb.keys.query("@bob:b.test", {"device_keys": {alice: []}}))
    assert out["failures"] == {}
    got = out["device_keys"][alice][device]
    assert got["keys"] == keys["keys"] and got["signatures"] == keys["signatures"]
    assert "device_display_name" not in got.get("unsigned", {})  # names stay at school
    req = {"one_time_keys": {alice: {device: "signed_curve25519"}}}
    first = result_of(eb.keys.claim(req))
    assert list(first["one_time_keys"][alice][device]) == ["signed_curve25519:A1"]
    assert result_of(eb.keys.claim(req))["one_time_keys"] == {}  # claimed once, no fallback


def test_user_devices_serves_keys_and_a_stream_id():
    a, b, ea, eb, alice, device, keys = _setup()
    status, body = result_of(
        b.client.request(
            "a.test", "GET", f"/_matrix/federation/v1/user/devices/{quote(alice, safe='')}"
        )
    )
    assert status == 200
    assert body["stream_id"] > 0
    (entry,) = body["devices"]
    assert entry["device_id"] == device and entry["keys"]["keys"] == keys["keys"]


def test_unreachable_server_is_a_failure():
    a, b, ea, eb, alice, device, keys = _setup()
    out = result_of(eb.keys.query("@bob:b.test", {"device_keys": {"@x:nowhere.test": []}}))
    assert out["failures"] == {"nowhere.test": {}}
    out = result_of(eb.keys.claim({"one_time_keys": {"@x:nowhere.test": {"D": "alg"}}}))
    assert out["failures"] == {"nowhere.test": {}}


def test_direct_to_device_edu_is_delivered_once_and_checked():
    a, b, ea, eb, alice, device, keys = _setup()
    edu = {
        "edu_type": "m.direct_to_device",
        "content": {
            "sender": "@bob:b.test",
            "type": "m.room.encrypted",
            "message_id": "m1",
            "messages": {alice: {"*": {"ciphertext": "x"}}},
        },
    }
    result_of(a.fed.edus.handle("b.test", edu))
    result_of(a.fed.edus.handle("b.test", edu))  # the same message_id again
    spoofed = {"edu_type": "m.direct_to_device", "content": dict(edu["content"], message_id="m2")}
    result_of(a.fed.edus.handle("c.test", spoofed))  # sender is not of the origin
    events, _pos = result_of(ea.to_device.take(alice, device, 0, 10**9))
    assert events == [
        {"sender": "@bob:b.test", "type": "m.room.encrypted", "content": {"ciphertext": "x"}}
    ]


def test_signing_a_remote_users_master_key():
    from federation.signing import signed_bytes

    a, b, ea, eb, alice, device, keys = _setup()
    bob = result_of(AccountsService(b.ctx).create_user("bob", None, "pupil"))

    def key(seed, user, usage, signer=None):
        k = SigningKey("x", bytes([seed]) * 32)
        pub = k.verify_key.encode()
        obj = {"user_id": user, "usage": [usage], "keys": {f"ed25519:{pub}": pub}}
        if signer is not None:
            s_key, s_pub = signer
            sig = encode_base64(s_key.sign(signed_bytes(obj)))
            obj["signatures"] = {user: {f"ed25519:{s_pub}": sig}}
        return obj, k, pub

    bob_master, _k, bob_pub = key(60, bob, "master")
    result_of(eb.cross_signing.upload(bob, {"master_key": bob_master}))
    a_master, a_master_key, a_master_pub = key(61, alice, "master")
    usk, usk_key, usk_pub = key(62, alice, "user_signing", (a_master_key, a_master_pub))
    result_of(ea.cross_signing.upload(alice, {"master_key": a_master, "user_signing_key": usk}))
    signed = dict(bob_master)
    sig = encode_base64(usk_key.sign(signed_bytes(bob_master)))
    signed["signatures"] = {alice: {f"ed25519:{usk_pub}": sig}}
    out = result_of(ea.cross_signing.upload_signatures(alice, {bob: {bob_pub: signed}}))
    assert out == {"failures": {}}
    # Unknown users and malformed IDs are failures, not errors.
    out = result_of(ea.cross_signing.upload_signatures(alice, {"nobody": {"K": signed}}))
    assert out["failures"]["nobody"]["K"]["errcode"] == "M_NOT_FOUND"


def test_device_list_updates_about_strangers_are_not_recorded():
    from sqlalchemy import func, select

    from schema.e2ee import e2ee_device_list_stream

    a, b, ea, eb, alice, device, keys = _setup()

    def rows():
        with a.db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(e2ee_device_list_stream)).scalar()

    before = rows()
    for n in range(5):
        edu = {
            "edu_type": "m.device_list_update",
            "content": {"user_id": "@bob:b.test", "device_id": f"D{n}", "stream_id": n},
        }
        result_of(a.fed.edus.handle("b.test", edu))
    spoofed = {"edu_type": "m.device_list_update", "content": {"user_id": alice}}
    result_of(a.fed.edus.handle("b.test", spoofed))  # not a user of the origin
    assert rows() == before
