"""A deleted device is a device-list change at once (client-server API "Tracking the
device list for a user",
https://spec.matrix.org/v1.16/client-server-api/#tracking-the-device-list-for-a-user:
the server reports a user in ``device_lists.changed`` when they "removed an existing
device with identity keys"): co-members learn of it in their next ``/sync`` after a
logout, ``POST /delete_devices`` or a deactivation -- not only after the periodic sweep --
and the device's keys and queued messages are gone."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support.deferreds import result_of
from twisted.internet import defer

from e2ee_support import PASSWORD, V3, Node
from schema.e2ee import e2ee_device_keys, e2ee_one_time_keys, e2ee_to_device


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


def upload(dev, n=3):
    body = {
        "device_keys": dev.device_keys(),
        "one_time_keys": {f"signed_curve25519:K{i}": dev.otk(i) for i in range(n)},
    }
    assert dev.call("POST", V3 + "/keys/upload", body)[0] == 200


def rows(node, table, device_id):
    with node.db.engine.connect() as conn:
        q = select(func.count()).select_from(table).where(table.c.device_id == device_id)
        return conn.execute(q).scalar()


def test_after_a_logout_co_members_see_the_change_in_their_next_sync(node):
    alice, bob, carol = node.device("alice"), node.device("bob"), node.device("carol")
    bob_phone = node.device("bob")
    node.room("alice", "bob")
    upload(bob)
    upload(bob_phone)
    # A message waits for the phone when it logs out.
    msg = {"messages": {bob.user_id: {bob_phone.device_id: {"body": "hi"}}}}
    assert alice.call("PUT", V3 + "/sendToDevice/m.test/t1", msg) == (200, {})
    since_alice, since_carol = alice.sync()["next_batch"], carol.sync()["next_batch"]

    assert bob_phone.call("POST", V3 + "/logout", {}) == (200, {})

    out = alice.sync(since_alice)
    assert out["device_lists"]["changed"] == [bob.user_id]
    # Carol shares no room with bob: she hears nothing.
    assert carol.sync(since_carol)["device_lists"] == {"changed": [], "left": []}
    # The phone's keys and its queued message are gone; bob's other device keeps its own.
    for table in (e2ee_device_keys, e2ee_one_time_keys, e2ee_to_device):
        assert rows(node, table, bob_phone.device_id) == 0
    assert rows(node, e2ee_one_time_keys, bob.device_id) == 3
    _, keys = alice.call("POST", V3 + "/keys/query", {"device_keys": {bob.user_id: []}})
    assert list(keys["device_keys"][bob.user_id]) == [bob.device_id]
    # Nothing is left for the periodic sweep.
    assert result_of(defer.ensureDeferred(node.e2ee.sweep.run_once())) == 0


def test_delete_devices_and_deactivation_are_changes_too(node):
    alice, bob = node.device("alice"), node.device("bob")
    bob_laptop = node.device("bob")
    node.room("alice", "bob")
    upload(bob)
    upload(bob_laptop)
    since = alice.sync()["next_batch"]

    body = {"devices": [bob_laptop.device_id]}
    session = bob.call("POST", V3 + "/delete_devices", body)[1]["session"]
    auth = {
        "type": "m.login.password",
        "session": session,
        "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": bob.user_id},
    }
    assert bob.call("POST", V3 + "/delete_devices", {**body, "auth": auth}) == (200, {})
    out = alice.sync(since)
    assert out["device_lists"]["changed"] == [bob.user_id]
    assert rows(node, e2ee_device_keys, bob_laptop.device_id) == 0
    assert rows(node, e2ee_device_keys, bob.device_id) == 1

    since = out["next_batch"]
    result_of(defer.ensureDeferred(node.accounts.deactivate(bob.user_id)))
    assert bob.user_id in alice.sync(since)["device_lists"]["changed"]
    assert rows(node, e2ee_device_keys, bob.device_id) == 0
