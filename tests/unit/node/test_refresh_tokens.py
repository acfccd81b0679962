"""Refresh tokens (client-server API "Refreshing access tokens") as a client sees them."""

from __future__ import annotations

import pytest

from accounts_support import V3, Node

WHOAMI = V3 + "/account/whoami"


@pytest.fixture
def node(monkeypatch):
    # TURN needs a voip section the shared harness's config does not have.
    monkeypatch.setattr("node.accounts.api.turn.register", lambda router, accounts: None)
    n = Node(monkeypatch, open_registration=True)
    n.add_user("alice")
    return n


def login_refreshable(node, **extra):
    status, body = node.login("alice", refresh_token=True, **extra)
    assert status == 200, body
    return body


def refresh(node, token):
    return node.call("POST", V3 + "/refresh", {"refresh_token": token})


def test_login_without_refresh_token_never_expires(node):
    status, body = node.login("alice")
    assert status == 200 and "refresh_token" not in body and "expires_in_ms" not in body
    node.reactor.advance(10 * 24 * 3600)
    assert node.call("GET", WHOAMI, token=body["access_token"])[0] == 200


def test_refreshable_token_expires_with_soft_logout(node):
    body = login_refreshable(node)
    assert body["refresh_token"] and body["expires_in_ms"] == 300_000
    assert node.call("GET", WHOAMI, token=body["access_token"])[0] == 200
    node.reactor.advance(301)
    status, err = node.call("GET", WHOAMI, token=body["access_token"])
    assert status == 401
    assert err["errcode"] == "M_UNKNOWN_TOKEN" and err["soft_logout"] is True


def test_refresh_rotates_both_tokens(node):
    first = login_refreshable(node)
    node.reactor.advance(301)
    status, second = refresh(node, first["refresh_token"])
    assert status == 200
    assert set(second) == {"access_token", "refresh_token", "expires_in_ms"}
    assert second["access_token"] != first["access_token"]
    status, me = node.call("GET", WHOAMI, token=second["access_token"])
    assert status == 200 and me["device_id"] == first["device_id"]  # same device
    # the old access token is gone; the old refresh token too, now the new one was used
    assert node.call("GET", WHOAMI, token=first["access_token"])[0] == 401
    status, err = refresh(node, first["refresh_token"])
    assert (status, err["errcode"], err["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", False)
    # and the new refresh token works
    assert refresh(node, second["refresh_token"])[0] == 200


def test_a_lost_answer_can_be_refreshed_again(node):
    first = login_refreshable(node)
    status, lost = refresh(node, first["refresh_token"])  # the client never saw this
    assert status == 200
    status, again = refresh(node, first["refresh_token"])
    assert status == 200
    # the unused replacement was dropped, the repeated one works
    assert node.call("GET", WHOAMI, token=lost["access_token"])[0] == 401
    assert refresh(node, lost["refresh_token"])[0] == 401
    assert node.call("GET", WHOAMI, token=again["access_token"])[0] == 200


def test_refresh_tokens_die_with_the_device(node):
    body = login_refreshable(node)
    assert node.call("POST", V3 + "/logout", {}, token=body["access_token"])[0] == 200
    status, err = refresh(node, body["refresh_token"])
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # a device re-created under the same ID does not revive it
    again = login_refreshable(node, device_id=body["device_id"])
    assert again["device_id"] == body["device_id"]
    assert refresh(node, body["refresh_token"])[0] == 401


def test_register_can_ask_for_a_refresh_token(node):
    status, body = node.call(
        "POST",
        V3 + "/register",
        {
            "username": "newpupil",
            "password": "a long enough password",
            "auth": {"type": "m.login.dummy"},
            "refresh_token": True,
        },
    )
    assert status == 200, body
    assert body["refresh_token"] and body["expires_in_ms"] == 300_000


def test_bad_refresh_requests(node):
    assert node.call("POST", V3 + "/refresh", {})[1]["errcode"] == "M_MISSING_PARAM"
    assert node.call("POST", V3 + "/refresh", {"refresh_token": 5})[1]["errcode"] == "M_BAD_JSON"
    status, err = refresh(node, "prt_made_up")
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, err = node.login("alice", refresh_token="yes")
    assert (status, err["errcode"]) == (400, "M_BAD_JSON")


def test_a_login_naming_the_device_revokes_its_refresh_tokens(node):
    first = login_refreshable(node)
    again = login_refreshable(node, device_id=first["device_id"])
    assert again["device_id"] == first["device_id"]
    assert refresh(node, first["refresh_token"])[0] == 401
    assert node.call("GET", WHOAMI, token=first["access_token"])[0] == 401
    assert node.call("GET", WHOAMI, token=again["access_token"])[0] == 200
    assert refresh(node, again["refresh_token"])[0] == 200
