"""UIA sessions stay bounded whatever unauthenticated clients do, and registration tokens
count uses only when a registration completes (client-server API "User-Interactive
Authentication API", "Token-authenticated registration")."""

from __future__ import annotations

import pytest
from support.clocks import FakeClock

from accounts_support import PASSWORD, V3, Node
from node.accounts.uia import AuthRequired, UserInteractiveAuth
from node.ratelimit import LimitExceeded


@pytest.fixture
def node(monkeypatch):
    return Node(monkeypatch)


def _start(node, ip="10.0.0.1", username=None):
    body = {"password": PASSWORD, **({"username": username} if username else {})}
    status, out = node.call("POST", V3 + "/register", body, ip=ip)
    assert status == 401, out
    return out["session"]


def _stage(node, session, auth, username, ip="10.0.0.1"):
    return node.call(
        "POST",
        V3 + "/register",
        {"username": username, "password": PASSWORD, "auth": {**auth, "session": session}},
        ip=ip,
    )


def _token(node, uses):
    return node.run(node.accounts.create_registration_token(uses_allowed=uses, expiry_time=None))


# --- registration tokens ---------------------------------------------------------------------
def test_single_use_token_is_not_blocked_by_an_abandoned_session(node):
    token = _token(node, 1)
    first = _start(node, username="quitter")
    status, body = _stage(
        node, first, {"type": "m.login.registration_token", "token": token}, "quitter"
    )
    assert status == 401 and body["completed"] == ["m.login.registration_token"]
    # the first client walks away; a second one can use the token right away
    second = _start(node, username="pupil2")
    status, body = _stage(
        node, second, {"type": "m.login.registration_token", "token": token}, "pupil2"
    )
    assert status == 401 and "errcode" not in body, body
    status, body = _stage(node, second, {"type": "m.login.dummy"}, "pupil2")
    assert status == 200 and body["user_id"] == "@pupil2:school.test"
    status, out = node.call(
        "GET", f"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}"
    )
    assert out == {"valid": False}


def test_two_sessions_racing_for_the_last_use_register_only_once(node):
    token = _token(node, 1)
    sessions = {}
    for name in ("racer1", "racer2"):
        sessions[name] = _start(node, username=name)
        status, body = _stage(
            node, sessions[name], {"type": "m.login.registration_token", "token": token}, name
        )
        assert status == 401 and "errcode" not in body
    status, body = _stage(node, sessions["racer1"], {"type": "m.login.dummy"}, "racer1")
    assert status == 200
    status, body = _stage(node, sessions["racer2"], {"type": "m.login.dummy"}, "racer2")
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    assert "m.login.registration_token" not in body.get("completed", [])
    assert body["session"] == sessions["racer2"]  # may retry with a new token
    assert node.run(node.accounts.user_exists("@racer2:school.test")) is False
    rows = node.run(node.accounts.list_registration_tokens())
    assert [(r["completed"], r["pending"]) for r in rows] == [(1, 0)]
    # a fresh token in the same session finishes the registration (dummy is still done)
    other = _token(node, 1)
    status, body = _stage(
        node, sessions["racer2"], {"type": "m.login.registration_token", "token": other}, "racer2"
    )
    assert status == 200 and body["user_id"] == "@racer2:school.test"


def test_junk_tokens_are_refused_before_any_database_lookup(node):
    session = _start(node, username="nul")
    runs = node.db.runs
    status, body = _stage(
        node, session, {"type": "m.login.registration_token", "token": "ab\x00cd"}, "nul"
    )
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    status, out = node.call(
        "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=" + "x" * 300
    )
    assert (status, out) == (200, {"valid": False})
    assert node.db.runs == runs + 1  # only the stage request's username check


# --- UIA sessions ----------------------------------------------------------------------------
def test_session_creation_is_rate_limited_per_address(monkeypatch):
    from node.config import RateLimitConfig

    node = Node(
        monkeypatch, rate_limits=RateLimitConfig(login_per_second=1000.0, login_burst_count=1000)
    )
    node.add_user("hanna")
    statuses = [
        node.call("POST", V3 + "/account/password", {"new_password": "x" * 12}, ip="10.9.0.1")[0]
        for _ in range(1200)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429
    assert len(node.accounts.uia) <= 100  # per-address cap
    status, body = node.call(
        "POST", V3 + "/account/password", {"new_password": "x" * 12}, ip="10.9.0.2"
    )
    assert status == 401 and body["session"]  # others are not affected


def _new(uia, ip="1.2.3.4", user=None):
    with pytest.raises(AuthRequired) as exc:
        run(uia.authenticate("op", None, [["m.login.dummy"]], {}, user_id=user, client_ip=ip))
    return exc.value.body["session"]


def run(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("did not complete synchronously")


def test_sessions_expire_after_ten_minutes():
    clock = FakeClock(0)
    uia = UserInteractiveAuth(clock.time_ms)
    sid = _new(uia)
    clock.now += 9 * 60 * 1000
    _new(uia, ip="5.6.7.8")
    assert len(uia) == 2
    clock.now += 2 * 60 * 1000
    with pytest.raises(Exception) as exc:
        run(
            uia.authenticate(
                "op",
                {"session": sid, "type": "m.login.dummy"},
                [["m.login.dummy"]],
                {},
                client_ip="1.2.3.4",
            )
        )
    assert getattr(exc.value, "errcode", None) == "M_UNKNOWN"
    assert len(uia) == 1


def test_per_client_cap_evicts_that_clients_oldest_session():
    uia = UserInteractiveAuth(FakeClock(0).time_ms, max_per_client=3)
    mine = [_new(uia) for _ in range(5)]
    other = _new(uia, ip="9.9.9.9")
    assert len(uia) == 4
    live = set(uia._sessions)
    assert live == {*mine[2:], other}


def test_total_cap_evicts_the_oldest_session():
    uia = UserInteractiveAuth(FakeClock(0).time_ms, max_sessions=50)
    first = _new(uia, ip="10.0.0.0")
    for i in range(1, 500):
        _new(uia, ip=f"10.0.{i // 256}.{i % 256}")
    assert len(uia) == 50 and first not in uia._sessions


def test_creation_limiter_keys_by_user_when_authenticated():
    class Limiter:
        def __init__(self) -> None:
            self.keys = []

        def check(self, key):
            self.keys.append(key)
            if len(self.keys) > 2:
                raise LimitExceeded(1000)

    limiter = Limiter()
    uia = UserInteractiveAuth(FakeClock(0).time_ms, creation_limiter=limiter)
    _new(uia, user="@a:s")
    _new(uia, ip="1.1.1.1")
    with pytest.raises(LimitExceeded):
        _new(uia, ip="1.1.1.1")
    assert limiter.keys == ["@a:s", "ip:1.1.1.1", "ip:1.1.1.1"]
