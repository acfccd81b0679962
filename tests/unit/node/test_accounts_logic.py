"""Unit tests of the accounts building blocks: passwords, tokens, IDs, UIA, profile rules."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from support.clocks import FakeClock

from federation.errors import MatrixError
from node.accounts import passwords, tokens
from node.accounts.ids import (
    InvalidUsername,
    check_localpart,
    generate_device_id,
    localpart_from_input,
)
from node.accounts.profile_rules import check_key, check_profile_size, check_value
from node.accounts.uia import AuthRequired, StageFailed, UserInteractiveAuth


# --- passwords -------------------------------------------------------------------------------
def test_password_hash_verifies_and_is_salted():
    h1 = passwords.hash_password("hunter22 hunter22")
    h2 = passwords.hash_password("hunter22 hunter22")
    assert h1.startswith("$argon2id$") and h1 != h2
    assert "hunter22" not in h1
    assert passwords.verify_password("hunter22 hunter22", h1)
    assert not passwords.verify_password("hunter22 hunter23", h1)


def test_password_verify_without_hash_or_with_garbage_is_false():
    assert not passwords.verify_password("anything", None)
    assert not passwords.verify_password("anything", "not-a-hash")


def test_generated_passwords_are_distinct_and_long():
    pw = {passwords.generate_password() for _ in range(20)}
    assert len(pw) == 20 and all(len(p) >= 16 for p in pw)


# --- tokens ----------------------------------------------------------------------------------
def test_access_token_hash_is_sha256_hex():
    tok = tokens.generate_access_token()
    assert tok.startswith("pat_") and len(tok) > 40
    assert tokens.hash_token(tok) == hashlib.sha256(tok.encode()).hexdigest()
    assert tokens.generate_access_token() != tok


@pytest.mark.parametrize(
    "text,delta",
    [
        ("7d", 7 * 86_400_000),
        ("12h", 12 * 3_600_000),
        ("30m", 30 * 60_000),
        ("2w", 14 * 86_400_000),
        ("45s", 45_000),
    ],
)
def test_parse_expiry_durations(text, delta):
    assert tokens.parse_expiry(text, 1_000) == 1_000 + delta


def test_parse_expiry_iso_and_errors():
    assert tokens.parse_expiry("2030-01-01T00:00:00+00:00", 0) == 1893456000000
    assert tokens.parse_expiry("2030-01-01", 0) == 1893456000000  # naive = UTC
    with pytest.raises(ValueError, match="invalid expiry"):
        tokens.parse_expiry("next tuesday", 0)


def test_registration_token_validity_rules():
    row = {"expiry_time": None, "uses_allowed": None, "pending": 5, "completed": 100}
    assert tokens.registration_token_valid(row, 0)
    assert not tokens.registration_token_valid(dict(row, expiry_time=10), 10)
    assert tokens.registration_token_valid(dict(row, expiry_time=11), 10)
    # only completed registrations count (pending is a leftover of older versions)
    assert tokens.registration_token_valid(dict(row, uses_allowed=101), 0)
    assert not tokens.registration_token_valid(dict(row, uses_allowed=100), 0)


def test_registration_token_grammar():
    assert tokens.is_valid_registration_token_string("abc-DEF_1.2~3")
    assert not tokens.is_valid_registration_token_string("has space")
    assert not tokens.is_valid_registration_token_string("x" * 65)
    assert tokens.is_valid_registration_token_string(tokens.generate_registration_token())


# --- identifiers -----------------------------------------------------------------------------
def test_localpart_rules():
    assert check_localpart("frau.weber-2", "s.test") == "frau.weber-2"
    for bad in ("", "Upper", "with space", "ümlaut", "a:b", "x" * 260):
        with pytest.raises(InvalidUsername):
            check_localpart(bad, "s.test")


def test_login_identifier_mapping():
    assert localpart_from_input("Alice", "s.test") == "alice"
    assert localpart_from_input("@alice:s.test", "s.test") == "alice"
    assert localpart_from_input("@alice:other.test", "s.test") is None
    assert localpart_from_input("@alice", "s.test") is None


def test_device_ids():
    ids = {generate_device_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 10 and i.isupper() for i in ids)


# --- UIA -------------------------------------------------------------------------------------
async def _ok(session, auth):
    session.data["seen"] = auth.get("secret")


async def _check_secret(session, auth):
    if auth.get("secret") != "s3cret":
        raise StageFailed("wrong secret")


def _uia(clock=None, discarded=None):
    clock = clock or FakeClock(1_000_000)
    return UserInteractiveAuth(
        clock.time_ms,
        timeout_ms=1000,
        on_discard=(discarded.append if discarded is not None else None),
    )


def _run(coro):
    return asyncio.run(coro)


FLOWS = [["x.secret", "m.login.dummy"]]
HANDLERS = {"x.secret": _check_secret, "m.login.dummy": _ok}


def test_uia_first_call_gives_session_and_flows():
    uia = _uia()
    with pytest.raises(AuthRequired) as exc:
        _run(uia.authenticate("op", None, FLOWS, HANDLERS, params={"x.secret": {"k": 1}}))
    body = exc.value.to_json()
    assert exc.value.http_status == 401
    assert body["flows"] == [{"stages": ["x.secret", "m.login.dummy"]}]
    assert body["params"] == {"x.secret": {"k": 1}}
    assert body["session"] and "completed" not in body and "errcode" not in body


def test_uia_multi_stage_flow_completes():
    uia = _uia()
    with pytest.raises(AuthRequired) as exc:
        _run(uia.authenticate("op", {}, FLOWS, HANDLERS))
    sid = exc.value.body["session"]
    with pytest.raises(AuthRequired) as exc:
        _run(
            uia.authenticate(
                "op", {"type": "x.secret", "secret": "s3cret", "session": sid}, FLOWS, HANDLERS
            )
        )
    assert exc.value.body["completed"] == ["x.secret"] and "errcode" not in exc.value.body
    session = _run(
        uia.authenticate("op", {"type": "m.login.dummy", "session": sid}, FLOWS, HANDLERS)
    )
    assert session.completed == ["x.secret", "m.login.dummy"]
    uia.finish(session)
    with pytest.raises(MatrixError) as exc:  # a finished session cannot be replayed
        _run(uia.authenticate("op", {"type": "m.login.dummy", "session": sid}, FLOWS, HANDLERS))
    assert exc.value.errcode == "M_UNKNOWN"


def test_uia_failed_stage_reports_error_and_allows_retry():
    uia = _uia()
    with pytest.raises(AuthRequired) as exc:
        _run(uia.authenticate("op", {"type": "x.secret", "secret": "nope"}, FLOWS, HANDLERS))
    body = exc.value.body
    assert body["errcode"] == "M_FORBIDDEN" and body["error"] == "wrong secret"
    with pytest.raises(AuthRequired) as exc:
        _run(
            uia.authenticate(
                "op",
                {"type": "x.secret", "secret": "s3cret", "session": body["session"]},
                FLOWS,
                HANDLERS,
            )
        )
    assert exc.value.body["completed"] == ["x.secret"]


def test_uia_stage_not_offered():
    uia = _uia()
    with pytest.raises(AuthRequired) as exc:
        _run(uia.authenticate("op", {"type": "m.login.sso"}, FLOWS, HANDLERS))
    assert exc.value.body["errcode"] == "M_FORBIDDEN"
    assert "completed" not in exc.value.body


def test_uia_session_bound_to_operation_and_user():
    uia = _uia()
    with pytest.raises(AuthRequired) as exc:
        _run(uia.authenticate("password", {}, FLOWS, HANDLERS, user_id="@a:s"))
    sid = exc.value.body["session"]
    for op, user in (("delete_devices", "@a:s"), ("password", "@b:s")):
        with pytest.raises(MatrixError) as err:
            _run(
                uia.authenticate(
                    op, {"type": "m.login.dummy", "session": sid}, FLOWS, HANDLERS, user_id=user
                )
            )
        assert err.value.http_status == 403


def test_uia_sessions_expire_and_are_discarded():
    clock, discarded = FakeClock(1_000_000), []
    uia = _uia(clock, discarded)
    with pytest.raises(AuthRequired) as exc:
        _run(uia.authenticate("op", {"type": "x.secret", "secret": "s3cret"}, FLOWS, HANDLERS))
    sid = exc.value.body["session"]
    clock.now += 1001
    with pytest.raises(MatrixError) as err:
        _run(uia.authenticate("op", {"type": "m.login.dummy", "session": sid}, FLOWS, HANDLERS))
    assert err.value.errcode == "M_UNKNOWN"
    assert [s.session_id for s in discarded] == [sid]


def test_uia_auth_must_be_object():
    with pytest.raises(MatrixError) as err:
        _run(_uia().authenticate("op", "dummy", FLOWS, HANDLERS))
    assert err.value.errcode == "M_BAD_JSON"


# --- profile rules ---------------------------------------------------------------------------
def test_profile_rules():
    for key in ("displayname", "avatar_url", "m.tz", "org.example.job_title"):
        check_key(key)
    for key in ("Display", "job_title", "m."):
        with pytest.raises(MatrixError) as err:
            check_key(key)
        assert err.value.errcode == "M_INVALID_PARAM"
    with pytest.raises(MatrixError) as err:
        check_key("a." + "b" * 300)
    assert err.value.errcode == "M_KEY_TOO_LARGE"
    check_value("avatar_url", "mxc://s/abc")
    for key, value in (
        ("avatar_url", "http://x"),
        ("displayname", 5),
        ("displayname", "x" * 300),
        ("m.tz", None),
    ):
        with pytest.raises(MatrixError):
            check_value(key, value)
    check_profile_size({"displayname": "x" * 1000})
    with pytest.raises(MatrixError) as err:
        check_profile_size({"org.example.big": "x" * 70_000})
    assert err.value.errcode == "M_PROFILE_TOO_LARGE"
