"""Account locking and suspension by a server admin, and ``m.login.token`` logins, as
clients see them (client-server "Account moderation", admin.yaml, login_token.yaml)."""

from __future__ import annotations

import pytest

from threepid_support import PASSWORD, SERVER, V3, ThreepidNode

V1 = "/_matrix/client/v1"


@pytest.fixture
def node(monkeypatch):
    node = ThreepidNode(monkeypatch)
    node.add_user("head", role="director")
    node.add_user("office", role="office")
    node.add_user("pia", role="pupil")
    node.add_user("tim", role="teacher")

    async def ok(req, **_):
        return 200, {}

    # Stand-ins for room routes (the rooms area is not part of this harness): the check
    # runs at authentication, before any handler.
    node.router.add("POST", V3 + "/createRoom", ok)
    node.router.add("PUT", V3 + "/rooms/{roomId}/send/{eventType}/{txnId}", ok)
    node.router.add("POST", V3 + "/rooms/{roomId}/leave", ok)
    return node


def _auth(user: str) -> dict:
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": PASSWORD,
    }


def test_only_server_admins_may_look_and_nothing_leaks(node):
    tim = node.login("tim")
    for path in ("/admin/lock/", "/admin/suspend/"):
        for target in (f"@pia:{SERVER}", f"@nobody:{SERVER}", "@x:elsewhere.test"):
            status, body = node.call("GET", V1 + path + target, token=tim)
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
            status, body = node.call("PUT", V1 + path + target, {"locked": True}, token=tim)
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    head = node.login("head")
    status, body = node.call("GET", V1 + f"/admin/lock/@nobody:{SERVER}", token=head)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = node.call("GET", V1 + "/admin/suspend/@x:elsewhere.test", token=head)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    assert node.call("GET", V1 + f"/admin/lock/@pia:{SERVER}", token=head) == (
        200,
        {"locked": False},
    )
    status, caps = node.call("GET", V3 + "/capabilities", token=head)
    assert caps["capabilities"]["m.account_moderation"] == {"suspend": True, "lock": True}
    status, caps = node.call("GET", V3 + "/capabilities", token=tim)
    assert "m.account_moderation" not in caps["capabilities"]


def test_admins_cannot_restrict_themselves_or_other_admins(node):
    head = node.login("head")
    for target in ("head", "office"):
        status, body = node.call(
            "PUT", V1 + f"/admin/lock/@{target}:{SERVER}", {"locked": True}, token=head
        )
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = node.call(
        "PUT", V1 + f"/admin/lock/@pia:{SERVER}", {"locked": "yes"}, token=head
    )
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = node.call("PUT", V1 + f"/admin/lock/@pia:{SERVER}", {}, token=head)
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_a_locked_user_is_soft_logged_out_until_unlocked(node):
    pia = node.login("pia")
    head = node.login("head")
    status, body = node.call("PUT", V1 + f"/admin/lock/@pia:{SERVER}", {"locked": True}, token=head)
    assert (status, body) == (200, {"locked": True})
    status, body = node.call("GET", V3 + "/account/whoami", token=pia)
    assert status == 401
    assert body == {
        "errcode": "M_USER_LOCKED",
        "error": "This account has been locked",
        "soft_logout": True,
    }
    status, body = node.call("POST", V3 + "/createRoom", {}, token=pia)
    assert (status, body["errcode"]) == (401, "M_USER_LOCKED")
    # A new login gets a token, which is locked as well.
    again = node.login("pia")
    assert node.call("GET", V3 + "/account/whoami", token=again)[0] == 401
    assert node.call("POST", V3 + "/logout", {}, token=again) == (200, {})  # allowed
    # Others are not affected.
    assert node.call("GET", V3 + "/account/whoami", token=node.login("tim"))[0] == 200
    node.call("PUT", V1 + f"/admin/lock/@pia:{SERVER}", {"locked": False}, token=head)
    assert node.call("GET", V3 + "/account/whoami", token=pia)[0] == 200  # session kept


def test_the_lock_survives_a_restart(node):
    head = node.login("head")
    node.call("PUT", V1 + f"/admin/lock/@pia:{SERVER}", {"locked": True}, token=head)
    node.accounts.moderation.load()  # what a start does
    assert node.accounts.moderation.is_locked(f"@pia:{SERVER}")


def test_a_suspended_user_reads_but_does_not_act(node):
    pia = node.login("pia")
    head = node.login("head")
    status, body = node.call(
        "PUT", V1 + f"/admin/suspend/@pia:{SERVER}", {"suspended": True}, token=head
    )
    assert (status, body) == (200, {"suspended": True})
    assert node.call("GET", V1 + f"/admin/suspend/@pia:{SERVER}", token=head) == (
        200,
        {"suspended": True},
    )
    for method, path, body in (
        ("POST", V3 + "/createRoom", {}),
        ("PUT", V3 + "/rooms/!r:school.test/send/m.room.message/1", {"body": "hi"}),
        ("PUT", V3 + f"/profile/@pia:{SERVER}/displayname", {"displayname": "P"}),
    ):
        status, answer = node.call(method, path, body, token=pia)
        assert (status, answer) == (
            403,
            {
                "errcode": "M_USER_SUSPENDED",
                "error": "You cannot perform this action while suspended.",
            },
        ), path
    assert node.call("GET", V3 + "/account/whoami", token=pia)[0] == 200
    assert node.call("POST", V3 + "/rooms/!r:school.test/leave", {}, token=pia)[0] == 200
    path = V3 + "/rooms/!r:school.test/send/m.room.redaction/2"
    assert node.call("PUT", path, {"redacts": "$e"}, token=pia)[0] == 200
    # A teacher is not affected; lifting the suspension restores the user.
    assert node.call("POST", V3 + "/createRoom", {}, token=node.login("tim"))[0] == 200
    node.call("PUT", V1 + f"/admin/suspend/@pia:{SERVER}", {"suspended": False}, token=head)
    assert node.call("POST", V3 + "/createRoom", {}, token=pia)[0] == 200


def test_login_token_flow(node):
    status, flows = node.call("GET", V3 + "/login")
    assert {"type": "m.login.token", "get_login_token": True} in flows["flows"]
    tim = node.login("tim")
    status, caps = node.call("GET", V3 + "/capabilities", token=tim)
    assert caps["capabilities"]["m.get_login_token"] == {"enabled": True}
    status, body = node.call("POST", V1 + "/login/get_token", {}, token=tim)
    assert status == 401 and body["flows"] == [{"stages": ["m.login.password"]}]
    status, body = node.call(
        "POST",
        V1 + "/login/get_token",
        {"auth": {**_auth("tim"), "session": body["session"]}},
        token=tim,
    )
    assert status == 200 and body["expires_in_ms"] == 120_000
    login_token = body["login_token"]
    status, body = node.call(
        "POST",
        V3 + "/login",
        {"type": "m.login.token", "token": login_token, "initial_device_display_name": "tablet"},
    )
    assert status == 200 and body["user_id"] == f"@tim:{SERVER}"
    assert (
        node.call("GET", V3 + "/account/whoami", token=body["access_token"])[1]["user_id"]
        == f"@tim:{SERVER}"
    )
    # Single use.
    status, body = node.call("POST", V3 + "/login", {"type": "m.login.token", "token": login_token})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    # Another user's password does not get tim a token.
    status, body = node.call("POST", V1 + "/login/get_token", {"auth": _auth("pia")}, token=tim)
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"


def test_login_tokens_expire_and_are_rate_limited(node):
    tim = node.login("tim")
    tokens = []
    for _ in range(3):
        status, body = node.call("POST", V1 + "/login/get_token", {"auth": _auth("tim")}, token=tim)
        assert status == 200
        tokens.append(body["login_token"])
    status, body = node.call("POST", V1 + "/login/get_token", {"auth": _auth("tim")}, token=tim)
    assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    node.reactor.advance(121)
    status, body = node.call("POST", V3 + "/login", {"type": "m.login.token", "token": tokens[0]})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_a_password_change_voids_unused_login_tokens(node):
    tim = node.login("tim")
    status, body = node.call("POST", V1 + "/login/get_token", {"auth": _auth("tim")}, token=tim)
    login_token = body["login_token"]
    status, _ = node.call(
        "POST",
        V3 + "/account/password",
        {"new_password": "another long password", "auth": _auth("tim")},
        token=tim,
    )
    assert status == 200
    status, body = node.call("POST", V3 + "/login", {"type": "m.login.token", "token": login_token})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
