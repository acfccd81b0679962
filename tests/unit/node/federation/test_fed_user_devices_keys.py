"""The federation user endpoints between in-process nodes: ``user/devices/{userId}``,
``user/keys/query`` and ``user/keys/claim`` -- a remote server asks about our users'
devices and keys and gets what the node stores (devices; no E2EE keys)."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support.deferreds import result_of

from inprocess_federation_support import FedNode, Network, dispatch
from node.accounts.service import AccountsService
from node.federation.server.user_common import MAX_DEVICE_IDS, MAX_USERS

V1 = "/_matrix/federation/v1"
QUERY = V1 + "/user/keys/query"
CLAIM = V1 + "/user/keys/claim"


def _nodes():
    net = Network()
    a = FedNode(net, "a.test")
    b = FedNode(net, "b.test")
    accounts = AccountsService(a.ctx)  # the real accounts store on a's database
    alice = result_of(accounts.create_user("alice", None, "teacher"))
    # What a password login does once the password is checked: a device + token each.
    _, phone = result_of(accounts.issue_token(alice, "PHONE", "Alice's phone", "127.0.0.1"))
    _, laptop = result_of(accounts.issue_token(alice, None, "Alice's laptop", "127.0.0.1"))
    result_of(accounts.create_user("bob", None, "pupil"))  # no device
    return a, b, accounts, alice, phone, laptop


def _get(src, dst, path):
    return result_of(src.client.request(dst.server_name, "GET", path))


def _post(src, dst, path, body):
    return result_of(src.client.request(dst.server_name, "POST", path, body))


def _devices_path(user_id):
    return f"{V1}/user/devices/{quote(user_id, safe='')}"


def test_user_devices_hides_device_names_by_default():
    a, b, accounts, alice, phone, laptop = _nodes()
    assert a.fed.fctx.config.share_device_names is False
    status, body = _get(b, a, _devices_path(alice))
    assert status == 200, body
    assert body["devices"] == [{"device_id": "PHONE"}, {"device_id": laptop}]


def test_user_devices_lists_both_login_devices_with_names():
    a, b, accounts, alice, phone, laptop = _nodes()
    a.fed.fctx.config.share_device_names = True  # federation.share_device_names: true
    status, body = _get(b, a, _devices_path(alice))
    assert status == 200, body
    assert body["user_id"] == alice
    assert body["stream_id"] == 0  # no m.device_list_update was ever sent
    assert body["devices"] == [
        {"device_id": "PHONE", "device_display_name": "Alice's phone"},
        {"device_id": laptop, "device_display_name": "Alice's laptop"},
    ]
    # No keys are stored, so none are invented; no cross-signing keys either.
    assert "master_key" not in body and "self_signing_key" not in body
    # A renamed and a deleted device show up on the next request.
    result_of(accounts.update_device(alice, laptop, None))
    result_of(accounts.delete_devices(alice, ["PHONE"]))
    status, body = _get(b, a, _devices_path(alice))
    assert status == 200 and body["devices"] == [{"device_id": laptop}]


def test_user_devices_of_user_without_devices_and_bad_users():
    a, b, *_ = _nodes()
    status, body = _get(b, a, _devices_path(a.uid("bob")))
    assert status == 200 and body == {"user_id": a.uid("bob"), "stream_id": 0, "devices": []}
    status, body = _get(b, a, _devices_path(a.uid("nobody")))
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = _get(b, a, _devices_path(b.uid("bob")))  # not one of a's users
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    assert "not hosted on this server" in body["error"]
    for bad in ("alice", "@alice", "@alice:", "@al\x00ice:a.test"):
        status, body = _get(b, a, _devices_path(bad))
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), bad


def test_user_endpoints_need_a_signed_request():
    a, b, accounts, alice, *_ = _nodes()
    status, body = dispatch(a, "GET", _devices_path(alice), b"", {})
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")
    status, body = dispatch(a, "POST", QUERY, b'{"device_keys": {}}', {})
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")


def test_keys_query_answers_known_users_with_no_stored_keys():
    a, b, accounts, alice, phone, laptop = _nodes()
    status, body = _post(
        b, a, QUERY, {"device_keys": {alice: [], a.uid("bob"): ["X"], a.uid("nobody"): []}}
    )
    assert status == 200, body
    # Devices exist but none uploaded keys: each known user's map is empty; an unknown
    # user is left out; no cross-signing keys are stored.
    assert body == {"device_keys": {alice: {}, a.uid("bob"): {}}}
    status, body = _post(b, a, QUERY, {"device_keys": {alice: [phone, laptop]}})
    assert status == 200 and body == {"device_keys": {alice: {}}}
    status, body = _post(b, a, QUERY, {"device_keys": {}})
    assert status == 200 and body == {"device_keys": {}}


def test_keys_claim_finds_no_one_time_keys():
    a, b, accounts, alice, phone, laptop = _nodes()
    status, body = _post(
        b,
        a,
        CLAIM,
        {"one_time_keys": {alice: {phone: "signed_curve25519", laptop: "signed_curve25519"}}},
    )
    assert status == 200 and body == {"one_time_keys": {}}


def test_keys_query_and_claim_refuse_other_servers_users_and_bad_bodies():
    a, b, accounts, alice, phone, _ = _nodes()
    cases = [
        (QUERY, {"device_keys": {alice: [], b.uid("bob"): []}}, 400, "M_INVALID_PARAM"),
        (QUERY, {"device_keys": {"not-a-user": []}}, 400, "M_INVALID_PARAM"),
        (QUERY, {}, 400, "M_MISSING_PARAM"),
        (QUERY, {"device_keys": [alice]}, 400, "M_BAD_JSON"),
        (QUERY, {"device_keys": {alice: "PHONE"}}, 400, "M_BAD_JSON"),
        (QUERY, {"device_keys": {alice: [1]}}, 400, "M_BAD_JSON"),
        (
            CLAIM,
            {"one_time_keys": {b.uid("bob"): {"D": "signed_curve25519"}}},
            400,
            "M_INVALID_PARAM",
        ),
        (CLAIM, {}, 400, "M_MISSING_PARAM"),
        (CLAIM, {"one_time_keys": {alice: ["PHONE"]}}, 400, "M_BAD_JSON"),
        (CLAIM, {"one_time_keys": {alice: {phone: 25519}}}, 400, "M_BAD_JSON"),
    ]
    for path, body_in, want_status, want_code in cases:
        status, body = _post(b, a, path, body_in)
        assert (status, body["errcode"]) == (want_status, want_code), (path, body_in, body)
        assert body["error"]


def test_keys_requests_over_the_caps_are_too_large():
    a, b, accounts, alice, *_ = _nodes()
    many = {a.uid(f"u{i}"): [] for i in range(MAX_USERS + 1)}
    status, body = _post(b, a, QUERY, {"device_keys": many})
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    status, body = _post(b, a, QUERY, {"device_keys": dict(list(many.items())[:MAX_USERS])})
    assert status == 200 and body == {"device_keys": {}}  # exactly the cap: fine
    devices = {f"D{i}": "signed_curve25519" for i in range(MAX_DEVICE_IDS + 1)}
    status, body = _post(b, a, CLAIM, {"one_time_keys": {alice: devices}})
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    status, body = _post(b, a, QUERY, {"device_keys": {alice: list(devices)}})
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
