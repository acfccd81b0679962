"""E2E: contact addresses, the password reset by e-mail, account locks and m.login.token
logins on a real node that mails through a real SMTP server on loopback (aiosmtpd).

A user adds an e-mail address by clicking the mailed link, later forgets the password,
types the mailed code into the client and sets a new password; a locked user's token is
refused with M_USER_LOCKED until the director unlocks the account; a second device logs in
with a token the first one asked for.  SQLite only: no SQL here differs by backend.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading

import pytest
from nio import AsyncClient, LoginResponse, WhoamiError, WhoamiResponse

from e2e_helpers import DEFAULT_PASSWORD, api, free_port, http_request, run

pytestmark = pytest.mark.e2e

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"


class Inbox:
    """What the SMTP server received: (recipient, text) pairs."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self.mails.append((rcpt, str(msg["Subject"]), msg.get_content()))
        return "250 OK"

    def last_to(self, address: str) -> str:
        with self._lock:
            for rcpt, _, text in reversed(self.mails):
                if rcpt == address:
                    return text
        raise AssertionError(f"no mail to {address}: {self.mails}")


@pytest.fixture(scope="module")
def smtp():
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    inbox = Inbox()
    controller = controller_mod.Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def mail_node(node_factory, smtp):
    _, port = smtp
    return node_factory(
        email={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
    )


def _pw_auth(user_id: str, password: str = DEFAULT_PASSWORD) -> dict:
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }


def test_add_an_address_then_reset_a_forgotten_password(mail_node, smtp):
    inbox, _ = smtp
    node = mail_node
    user_id = node.add_user("clara", role="teacher")
    address = "clara@mail.e2e.test"

    async def scenario():
        client = await node.login(user_id)
        try:
            # Add the address: the mailed link is followed like a user clicking it.
            status, body = api(
                node,
                "POST",
                V3 + "/account/3pid/email/requestToken",
                json_body={"client_secret": "addsecret", "email": address, "send_attempt": 1},
            )
            assert status == 200, body
            sid = body["sid"]
            link = re.search(r"(http://\S+submit_token\S+)", inbox.last_to(address)).group(1)
            status, _, page = http_request("GET", link)
            assert status == 200 and b"confirmed" in page
            status, body = api(
                node,
                "POST",
                V3 + "/account/3pid/add",
                token=client.access_token,
                json_body={"sid": sid, "client_secret": "addsecret", "auth": _pw_auth(user_id)},
            )
            assert (status, body) == (200, {})
            status, body = api(node, "GET", V3 + "/account/3pid", token=client.access_token)
            assert [t["address"] for t in body["threepids"]] == [address]

            # Forgot the password: the code from the mail is typed into the client, which
            # submits it to the submit_url the server gave.
            status, body = api(
                node,
                "POST",
                V3 + "/account/password/email/requestToken",
                json_body={"client_secret": "resetsecret", "email": address, "send_attempt": 1},
            )
            assert status == 200, body
            sid, submit_url = body["sid"], body["submit_url"]
            code = re.search(r"Your code: (\w+)", inbox.last_to(address)).group(1)
            status, _, answer = http_request(
                "POST",
                submit_url,
                body=(
                    '{"sid": "%s", "client_secret": "resetsecret", "token": "%s"}' % (sid, code)
                ).encode(),
                headers={"Content-Type": "application/json"},
            )
            assert status == 200 and b'"success":true' in answer.replace(b" ", b"")
            status, body = api(
                node,
                "POST",
                V3 + "/account/password",
                json_body={
                    "new_password": "a new password for clara",
                    "auth": {
                        "type": "m.login.email.identity",
                        "threepid_creds": {"sid": sid, "client_secret": "resetsecret"},
                    },
                },
            )
            assert (status, body) == (200, {})
            # Every device was logged out; the new password works, the old one not.
            who = await client.whoami()
            assert isinstance(who, WhoamiError) and who.status_code == "M_UNKNOWN_TOKEN"
        finally:
            await client.close()
        old = AsyncClient(node.base_url, user_id)
        try:
            assert not isinstance(await old.login(DEFAULT_PASSWORD), LoginResponse)
        finally:
            await old.close()
        fresh = await node.login(user_id, "a new password for clara")
        try:
            status, body = api(
                node,
                "POST",
                V3 + "/account/3pid/delete",
                token=fresh.access_token,
                json_body={"medium": "email", "address": address},
            )
            assert (status, body) == (200, {"id_server_unbind_result": "no-support"})
            status, body = api(node, "GET", V3 + "/account/3pid", token=fresh.access_token)
            assert body == {"threepids": []}
        finally:
            await fresh.close()

    run(scenario())


def test_a_locked_account_is_refused_until_unlocked(mail_node):
    node = mail_node
    head = node.add_user("head", role="director")
    pupil = node.add_user("paul", role="pupil")

    async def scenario():
        director = await node.login(head)
        paul = await node.login(pupil)
        try:
            path = V1 + f"/admin/lock/{pupil}"
            status, body = api(
                node, "PUT", path, token=paul.access_token, json_body={"locked": True}
            )
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
            status, body = api(
                node, "PUT", path, token=director.access_token, json_body={"locked": True}
            )
            assert (status, body) == (200, {"locked": True})
            token = paul.access_token  # nio forgets it on a soft logout
            who = await paul.whoami()
            assert isinstance(who, WhoamiError) and who.status_code == "M_USER_LOCKED"
            status, body = api(node, "GET", V3 + "/account/whoami", token=token)
            assert status == 401 and body.get("soft_logout") is True, body
            api(node, "PUT", path, token=director.access_token, json_body={"locked": False})
            paul.access_token = token
            who = await paul.whoami()
            assert isinstance(who, WhoamiResponse) and who.user_id == pupil  # session kept
        finally:
            await director.close()
            await paul.close()

    run(scenario())


def test_a_second_device_logs_in_with_a_login_token(mail_node):
    node = mail_node
    user_id = node.add_user("tara", role="teacher")

    async def scenario():
        first = await node.login(user_id)
        second = AsyncClient(node.base_url, user_id)
        try:
            status, flows = api(node, "GET", V3 + "/login")
            assert {"type": "m.login.token", "get_login_token": True} in flows["flows"]
            status, body = api(
                node,
                "POST",
                V1 + "/login/get_token",
                token=first.access_token,
                json_body={"auth": _pw_auth(user_id)},
            )
            assert status == 200 and body["expires_in_ms"] == 120_000
            resp = await second.login(token=body["login_token"], device_name="whiteboard")
            assert isinstance(resp, LoginResponse), resp
            who = await second.whoami()
            assert isinstance(who, WhoamiResponse) and who.user_id == user_id
            again = AsyncClient(node.base_url, user_id)
            try:
                assert not isinstance(await again.login(token=body["login_token"]), LoginResponse)
            finally:
                await again.close()
        finally:
            await first.close()
            await second.close()

    run(scenario())


def test_starttls_is_required_unless_switched_off(smtp):
    """``smtp_security: starttls`` (the default) never falls back to plain text: against a
    server without STARTTLS the mail is refused, not sent."""
    from node.accounts.threepid_mailer import MailError, SmtpMailer, build_message
    from node.config import EmailConfig

    inbox, port = smtp
    before = len(inbox.mails)
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=10.0)
    mailer = SmtpMailer(None, config, "school.e2e.test")
    msg = build_message(mailer.sender, "x@mail.e2e.test", "test", "text", "school.e2e.test")
    with pytest.raises(MailError):
        mailer._send_blocking(msg)
    assert len(inbox.mails) == before
