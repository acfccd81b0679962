"""Password and token guessing through every credential check, in-process over the real
``ApiResource``: ``/login``, the UIA ``m.login.password`` stage (password change, device
deletion, deactivation) and ``m.login.registration_token`` share one lockout, so a guesser
cannot get more tries by switching endpoints (client-server API "Rate limiting",
"User-Interactive Authentication API")."""

from __future__ import annotations

import pytest

from accounts_support import PASSWORD, SERVER, V3, Node

WRONG = "wrong password!"


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


def _change_password(node, user, password, new="new password 1", ip="10.0.0.9", token=None):
    status, body = node.call(
        "POST", V3 + "/account/password", {"new_password": new}, ip=ip, token=token
    )
    assert status == 401, body
    return node.call(
        "POST",
        V3 + "/account/password",
        {
            "new_password": new,
            "logout_devices": True,
            "auth": {
                "type": "m.login.password",
                "session": body["session"],
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            },
        },
        ip=ip,
        token=token,
    )


def test_password_change_guessing_is_locked_out_and_owner_keeps_devices(node):
    node.add_user("anna")
    owner_token = node.token_for("anna")
    outcomes = [_change_password(node, "anna", WRONG, ip=f"10.1.0.{i}")[0] for i in range(40)]
    assert outcomes.count(401) <= 10 and outcomes[-1] == 429
    status, body = _change_password(node, "anna", PASSWORD, ip="10.1.1.1")
    assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED"
    assert body["retry_after_ms"] > 0
    # the guesser got nothing: the owner's session still works, the password is unchanged
    assert node.call("GET", V3 + "/account/whoami", token=owner_token)[0] == 200
    node.reactor.advance(3600)
    assert node.login("anna")[0] == 200


def test_failed_uia_guesses_count_toward_login_lockout(node):
    node.add_user("ben")
    for i in range(10):
        status, _ = _change_password(node, "ben", WRONG, ip=f"10.2.0.{i}")
        assert status == 401
    status, body = node.login("ben", ip="10.2.1.1")
    assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED"
    # and the other way round: login failures lock the UIA stage
    node.add_user("cleo")
    for i in range(10):
        assert node.login("cleo", WRONG, ip=f"10.3.0.{i}")[0] == 403
    status, body = _change_password(node, "cleo", PASSWORD, ip="10.3.1.1")
    assert status == 429


def test_lockout_is_per_user(node):
    node.add_user("dora")
    node.add_user("emil")
    for i in range(12):
        node.login("dora", WRONG, ip=f"10.4.0.{i}")
    assert node.login("dora", ip="10.4.1.1")[0] == 429
    assert node.login("emil", ip="10.4.1.1")[0] == 200


def test_lockout_recovers_over_time(node):
    node.add_user("finn")
    for i in range(12):
        node.login("finn", WRONG, ip=f"10.5.0.{i}")
    status, body = node.login("finn", ip="10.5.1.1")
    assert status == 429
    node.reactor.advance(body["retry_after_ms"] / 1000 + 1)
    assert node.login("finn", ip="10.5.1.1")[0] == 200


def test_delete_devices_stage_is_locked_out_too(node):
    node.add_user("gus")
    token = node.token_for("gus")
    other = node.token_for("gus", device_id="OTHER")
    statuses = []
    for _ in range(15):
        status, body = node.call(
            "POST", V3 + "/delete_devices", {"devices": ["OTHER"]}, token=token
        )
        statuses.append(
            node.call(
                "POST",
                V3 + "/delete_devices",
                {
                    "devices": ["OTHER"],
                    "auth": {
                        "type": "m.login.password",
                        "session": body["session"],
                        "user": "gus",
                        "password": WRONG,
                    },
                },
                token=token,
            )[0]
        )
    assert statuses[-1] == 429 and statuses.count(401) <= 10
    assert node.call("GET", V3 + "/account/whoami", token=other)[0] == 200


def test_registration_token_guessing_is_limited_per_ip(node):
    """A slow guesser (two requests every 2.5 s, under the per-request limit) is stopped
    after a bounded number of failed tokens."""
    node.run(
        node.accounts.create_registration_token(
            uses_allowed=None, expiry_time=None, token="klasse5a"
        )
    )
    statuses = []
    for i in range(200):
        node.reactor.advance(2.5)
        status, body = node.call("POST", V3 + "/register", {"password": PASSWORD}, ip="10.6.0.1")
        if status != 401:
            statuses.append(status)
            continue
        statuses.append(
            node.call(
                "POST",
                V3 + "/register",
                {
                    "password": PASSWORD,
                    "auth": {
                        "type": "m.login.registration_token",
                        "token": f"guess{i}",
                        "session": body["session"],
                    },
                },
                ip="10.6.0.1",
            )[0]
        )
    assert statuses[-1] == 429
    # another client address is not affected
    status, body = node.call("POST", V3 + "/register", {"password": PASSWORD}, ip="10.6.0.2")
    assert status == 401 and "session" in body


def test_token_validity_oracle_counts_failures(node):
    statuses = []
    for i in range(200):
        node.reactor.advance(1.5)
        statuses.append(
            node.call(
                "GET",
                f"/_matrix/client/v1/register/m.login.registration_token/validity?token=guess{i}",
                ip="10.7.0.1",
            )[0]
        )
    assert statuses[0] == 200 and statuses[-1] == 429


def test_guesses_at_unknown_users_are_failures_too(node):
    for i in range(12):
        node.login(f"@zoe:{SERVER}", WRONG, ip=f"10.8.0.{i}")
    assert node.login(f"@zoe:{SERVER}", ip="10.8.1.1")[0] == 429
