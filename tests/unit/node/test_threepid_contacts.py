"""E-mail contact addresses, validation sessions and the password reset by e-mail, as a
client sees them (client-server "Adding Account Administrative Contact Information",
"Password management", "Email-based (identity / homeserver)")."""

from __future__ import annotations

import pytest

from threepid_support import PASSWORD, V3, ThreepidNode

ADD = "/account/3pid/email/requestToken"
RESET = "/account/password/email/requestToken"
REGISTER = "/register/email/requestToken"
SUBMIT = "/_parta/v1/threepid/email/submit_token"


@pytest.fixture
def node(monkeypatch):
    return ThreepidNode(monkeypatch)


def _pw_auth(user: str, session: str | None = None) -> dict:
    auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": PASSWORD,
    }
    if session:
        auth["session"] = session
    return auth


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"email": "a@school.test", "send_attempt": 1}, "M_MISSING_PARAM"),
        (
            {"client_secret": "bad secret!", "email": "a@school.test", "send_attempt": 1},
            "M_INVALID_PARAM",
        ),
        (
            {"client_secret": "x" * 256, "email": "a@school.test", "send_attempt": 1},
            "M_INVALID_PARAM",
        ),
        ({"client_secret": "ok", "send_attempt": 1}, "M_MISSING_PARAM"),
        ({"client_secret": "ok", "email": "not-an-address", "send_attempt": 1}, "M_INVALID_PARAM"),
        (
            {"client_secret": "ok", "email": "a@b.test\r\nBcc: x@y", "send_attempt": 1},
            "M_INVALID_PARAM",
        ),
        ({"client_secret": "ok", "email": "x,evil@b.test", "send_attempt": 1}, "M_INVALID_PARAM"),
        ({"client_secret": "ok", "email": "a@school.test"}, "M_MISSING_PARAM"),
        ({"client_secret": "ok", "email": "a@school.test", "send_attempt": -1}, "M_INVALID_PARAM"),
        (
            {
                "client_secret": "ok",
                "email": "a@school.test",
                "send_attempt": 1,
                "next_link": "javascript:alert(1)",
            },
            "M_INVALID_PARAM",
        ),
    ],
)
def test_request_token_checks_its_parameters(node, body, errcode):
    status, answer = node.call("POST", V3 + ADD, body)
    assert (status, answer["errcode"]) == (400, errcode)
    assert node.mailer.sent == []


def test_sms_and_mail_less_nodes_answer_not_supported(monkeypatch, node):
    for path in (
        "/register/msisdn/requestToken",
        "/account/password/msisdn/requestToken",
        "/account/3pid/msisdn/requestToken",
    ):
        body = {
            "client_secret": "s",
            "country": "GB",
            "phone_number": "07700900001",
            "send_attempt": 1,
        }
        status, answer = node.call("POST", V3 + path, body)
        assert (status, answer["errcode"]) == (400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
    off = ThreepidNode(monkeypatch, email=False)
    for path in (ADD, RESET):
        status, answer = off.request_token(path, "a@school.test")
        assert (status, answer["errcode"]) == (400, "M_THREEPID_MEDIUM_NOT_SUPPORTED")
    token = off.login(off.add_user("tess").split(":")[0][1:])
    status, caps = off.call("GET", V3 + "/capabilities", token=token)
    assert caps["capabilities"]["m.3pid_changes"] == {"enabled": False}


def test_registration_by_mail_is_denied_unless_configured(node):
    status, answer = node.request_token(REGISTER, "new@school.test")
    assert (status, answer["errcode"]) == (403, "M_THREEPID_DENIED")


def test_send_attempt_is_idempotent(node):
    status, first = node.request_token(ADD, "Ann@School.TEST")
    assert status == 200 and first["submit_url"].endswith(SUBMIT)
    assert node.mailer.sent[-1][0] == "Ann@school.test"  # the domain is lower-cased
    status, again = node.request_token(ADD, "Ann@School.TEST")
    assert (status, again["sid"]) == (200, first["sid"])
    assert len(node.mailer.sent) == 1  # a retry sends nothing
    old_code = node.mailer.last_code()
    status, third = node.request_token(ADD, "Ann@School.TEST", attempt=2)
    assert third["sid"] == first["sid"] and len(node.mailer.sent) == 2
    status, answer = node.call(
        "POST", SUBMIT, {"sid": first["sid"], "client_secret": "s3cret", "token": old_code}
    )
    assert (status, answer["errcode"]) == (400, "M_TOKEN_INCORRECT")
    node.validate(first["sid"], code=node.mailer.last_code().lower())  # case-insensitive


def test_add_list_and_delete_an_address(node):
    user = node.add_user("ana")
    token = node.login("ana")
    status, body = node.request_token(ADD, "ana@school.test")
    sid = body["sid"]
    # Not validated yet: refused after UIA.
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/add",
        {"sid": sid, "client_secret": "s3cret", "auth": _pw_auth("ana")},
        token=token,
    )
    assert (status, answer["errcode"]) == (403, "M_THREEPID_AUTH_FAILED")
    node.validate(sid)
    # UIA: no auth -> 401 with the password flow.
    status, answer = node.call(
        "POST", V3 + "/account/3pid/add", {"sid": sid, "client_secret": "s3cret"}, token=token
    )
    assert status == 401 and answer["flows"] == [{"stages": ["m.login.password"]}]
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/add",
        {"sid": sid, "client_secret": "s3cret", "auth": _pw_auth("ana", answer["session"])},
        token=token,
    )
    assert (status, answer) == (200, {})
    status, listed = node.call("GET", V3 + "/account/3pid", token=token)
    assert status == 200
    [entry] = listed["threepids"]
    assert entry["medium"] == "email" and entry["address"] == "ana@school.test"
    assert isinstance(entry["validated_at"], int) and isinstance(entry["added_at"], int)
    # The session is used up.
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/add",
        {"sid": sid, "client_secret": "s3cret", "auth": _pw_auth("ana")},
        token=token,
    )
    assert (status, answer["errcode"]) == (403, "M_THREEPID_AUTH_FAILED")
    # Another user sees only their own list.
    node.add_user("ben")
    other = node.login("ben")
    assert node.call("GET", V3 + "/account/3pid", token=other) == (200, {"threepids": []})
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/delete",
        {"medium": "email", "address": "ana@school.test"},
        token=other,
    )
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/delete",
        {"medium": "email", "address": "ana@SCHOOL.test"},
        token=token,
    )
    assert (status, answer) == (200, {"id_server_unbind_result": "no-support"})
    assert node.call("GET", V3 + "/account/3pid", token=token) == (200, {"threepids": []})
    assert user


def test_an_address_in_use_is_not_revealed_and_not_taken(node):
    node.add_user("ana")
    node.add_address(node.login("ana"), "ana", "ana@school.test")
    node.add_user("eve")
    eve = node.login("eve")
    status, body = node.request_token(ADD, "ana@school.test", secret="eves")
    assert status == 200 and "sid" in body  # same answer as for a free address
    to, subject, text = node.mailer.sent[-1]
    assert to == "ana@school.test" and "already uses it" in text
    assert node.mailer.last_code() is None  # no code in that mail
    status, answer = node.call(
        "POST", SUBMIT, {"sid": body["sid"], "client_secret": "eves", "token": "AAAAAAAAAA"}
    )
    assert (status, answer["errcode"]) == (400, "M_TOKEN_INCORRECT")
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/add",
        {"sid": body["sid"], "client_secret": "eves", "auth": _pw_auth("eve")},
        token=eve,
    )
    assert (status, answer["errcode"]) == (403, "M_THREEPID_AUTH_FAILED")


def test_wrong_codes_are_capped_and_codes_expire(node):
    status, body = node.request_token(ADD, "cap@school.test")
    sid, code = body["sid"], node.mailer.last_code()
    wrong = {"sid": sid, "client_secret": "s3cret", "token": "WRONGWRONG"}
    for _ in range(5):
        status, answer = node.call("POST", SUBMIT, wrong)
        assert answer["errcode"] == "M_TOKEN_INCORRECT"
    status, answer = node.call("POST", SUBMIT, {**wrong, "token": code})
    assert (status, answer["errcode"]) == (400, "M_SESSION_EXPIRED")
    status, body = node.request_token(ADD, "late@school.test")
    node.reactor.advance(3601)
    status, answer = node.call(
        "POST",
        SUBMIT,
        {"sid": body["sid"], "client_secret": "s3cret", "token": node.mailer.last_code()},
    )
    assert (status, answer["errcode"]) == (400, "M_SESSION_EXPIRED")
    status, answer = node.call(
        "POST", SUBMIT, {"sid": body["sid"], "client_secret": "other", "token": "X"}
    )
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM")


def test_mailed_link_confirms_and_redirects(node):
    status, body = node.request_token(ADD, "link@school.test")
    link = node.mailer.last_link()
    assert link.startswith("https://school.test/_parta/v1/threepid/email/submit_token?")
    status, page, _ = node.get_page(link.split("school.test", 1)[1])
    assert status == 200 and b"confirmed" in page
    # The session is validated: adding the address works now.
    node.add_user("lin")
    token = node.login("lin")
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/add",
        {"sid": body["sid"], "client_secret": "s3cret", "auth": _pw_auth("lin")},
        token=token,
    )
    assert (status, answer) == (200, {})
    node.request_token(ADD, "next@school.test", next_link="https://app.school.test/done")
    status, _, location = node.get_page(node.mailer.last_link().split("school.test", 1)[1])
    assert (status, location) == (302, "https://app.school.test/done")
    status, page, _ = node.get_page(SUBMIT + "?sid=nope&client_secret=x&token=y")
    assert status == 400 and b"did not work" in page


def test_request_token_is_rate_limited_per_address(node):
    for attempt in (1, 2, 3):
        assert node.request_token(ADD, "busy@school.test", attempt=attempt)[0] == 200
    status, answer = node.request_token(ADD, "busy@school.test", attempt=4)
    assert (status, answer["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert node.request_token(ADD, "calm@school.test")[0] == 200  # others unaffected


def test_bind_unbind_and_the_deprecated_endpoint(node):
    node.add_user("ana")
    token = node.login("ana")
    creds = {"client_secret": "s", "id_server": "id.test", "id_access_token": "t", "sid": "1"}
    status, answer = node.call("POST", V3 + "/account/3pid/bind", creds, token=token)
    assert (status, answer["errcode"]) == (400, "M_SERVER_NOT_TRUSTED")
    status, answer = node.call("POST", V3 + "/account/3pid/bind", {"sid": "1"}, token=token)
    assert (status, answer["errcode"]) == (400, "M_MISSING_PARAM")
    status, answer = node.call(
        "POST", V3 + "/account/3pid", {"three_pid_creds": creds}, token=token
    )
    assert (status, answer["errcode"]) == (403, "M_THREEPID_AUTH_FAILED")
    status, answer = node.call(
        "POST",
        V3 + "/account/3pid/unbind",
        {"medium": "email", "address": "a@b.test"},
        token=token,
    )
    assert (status, answer) == (200, {"id_server_unbind_result": "no-support"})
    status, answer = node.call(
        "POST", V3 + "/account/3pid/unbind", {"medium": "fax", "address": "1"}, token=token
    )
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM")
    status, caps = node.call("GET", V3 + "/capabilities", token=token)
    assert caps["capabilities"]["m.3pid_changes"] == {"enabled": True}


def test_password_reset_by_mail(node):
    node.add_user("tom")
    old_token = node.login("tom")
    node.add_address(old_token, "tom", "tom@school.test")
    # An unknown address: the same answer, a notice instead of a code.
    status, body = node.request_token(RESET, "nobody@school.test")
    assert status == 200 and "sid" in body
    assert node.mailer.last_code() is None and "no account" in node.mailer.sent[-1][2]
    status, body = node.request_token(RESET, "tom@school.test", secret="reset1")
    sid = body["sid"]
    node.validate(sid, secret="reset1")
    new = {"new_password": "a brand new secret"}
    status, answer = node.call("POST", V3 + "/account/password", new)
    assert status == 401
    assert {"stages": ["m.login.email.identity"]} in answer["flows"]
    auth = {
        "type": "m.login.email.identity",
        "session": answer["session"],
        "threepid_creds": {"sid": sid, "client_secret": "reset1"},
    }
    status, answer = node.call("POST", V3 + "/account/password", {**new, "auth": auth})
    assert (status, answer) == (200, {})
    # logout_devices defaults to true: the old session is gone.
    status, answer = node.call("GET", V3 + "/account/whoami", token=old_token)
    assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    node.login("tom", "a brand new secret")
    # The validation session is used up.
    auth = {
        "type": "m.login.email.identity",
        "threepid_creds": {"sid": sid, "client_secret": "reset1"},
    }
    status, answer = node.call("POST", V3 + "/account/password", {**new, "auth": auth})
    assert status == 401 and answer["errcode"] == "M_THREEPID_AUTH_FAILED"


def test_password_reset_session_cannot_serve_another_purpose(node):
    node.add_user("tom")
    status, body = node.request_token(ADD, "tom2@school.test")
    node.validate(body["sid"])
    auth = {
        "type": "m.login.email.identity",
        "threepid_creds": {"sid": body["sid"], "client_secret": "s3cret"},
    }
    status, answer = node.call(
        "POST", V3 + "/account/password", {"new_password": "another password", "auth": auth}
    )
    assert status == 401 and answer["errcode"] == "M_THREEPID_AUTH_FAILED"


def test_registration_with_a_mail_stage(monkeypatch):
    node = ThreepidNode(monkeypatch, email_registration=True)
    token = node.run(node.accounts.create_registration_token(uses_allowed=None, expiry_time=None))
    status, answer = node.call(
        "POST", V3 + "/register", {"username": "newbie", "password": "long enough pw"}
    )
    assert status == 401
    assert answer["flows"] == [{"stages": ["m.login.registration_token", "m.login.email.identity"]}]
    session = answer["session"]
    status, body = node.request_token(REGISTER, "newbie@school.test")
    node.validate(body["sid"])
    req = {"username": "newbie", "password": "long enough pw"}
    status, answer = node.call(
        "POST",
        V3 + "/register",
        {**req, "auth": {"type": "m.login.registration_token", "token": token, "session": session}},
    )
    assert status == 401
    status, answer = node.call(
        "POST",
        V3 + "/register",
        {
            **req,
            "auth": {
                "type": "m.login.email.identity",
                "session": session,
                "threepid_creds": {"sid": body["sid"], "client_secret": "s3cret"},
            },
        },
    )
    assert status == 200, answer
    status, listed = node.call("GET", V3 + "/account/3pid", token=answer["access_token"])
    assert [t["address"] for t in listed["threepids"]] == ["newbie@school.test"]
    # The address is now taken: a second registration gets a notice, not a code.
    node.request_token(REGISTER, "newbie@school.test", secret="again")
    assert node.mailer.last_code() is None


def test_deactivation_frees_the_address(node):
    node.add_user("ana")
    token = node.login("ana")
    node.add_address(token, "ana", "ana@school.test")
    status, _ = node.call(
        "POST", V3 + "/account/deactivate", {"auth": _pw_auth("ana")}, token=token
    )
    assert status == 200
    status, body = node.request_token(ADD, "ana@school.test", secret="newowner")
    assert status == 200 and node.mailer.last_code() is not None


def test_cli_deactivation_frees_the_address_too(node):
    from node.accounts import admin

    node.add_user("cid")
    node.add_address(node.login("cid"), "cid", "cid@school.test")
    with node.db.engine.begin() as conn:
        admin.deactivate_user(conn, server_name="school.test", user="cid", erase=False)
    node.request_token(ADD, "cid@school.test", secret="next")
    assert node.mailer.last_code() is not None


def test_a_mail_server_failure_is_a_clean_error_and_can_be_retried(node):
    from node.accounts.threepid_mailer import MailError

    sent = node.mailer.sent

    class Down:
        async def send(self, to, subject, text):
            raise MailError("connection refused")

    node.accounts.threepid_sessions.mailer = Down()
    status, answer = node.request_token(ADD, "retry@school.test")
    assert (status, answer["errcode"]) == (503, "M_UNKNOWN")
    node.accounts.threepid_sessions.mailer = node.mailer
    status, body = node.request_token(ADD, "retry@school.test")  # the same send_attempt
    assert status == 200 and len(sent) == 1
    node.validate(body["sid"])
