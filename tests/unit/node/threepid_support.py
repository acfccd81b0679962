"""In-process harness for the contact-address, moderation and login-token tests (not a test
module): the accounts area of ``accounts_support`` on a full ``node.config.Config`` with
e-mail switched on and a mailer that keeps the mails instead of sending them."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any

from support.db import InlineDB
from twisted.internet import task
from twisted.web.test.requesthelper import DummyRequest

import schema.accounts  # noqa: F401 - registers the tables
import schema.threepid  # noqa: F401 - registers the tables
from accounts_support import PASSWORD, SERVER, V3, Node
from node.accounts import wiring
from node.accounts.service import AccountsService
from node.clock import ReactorClock
from node.config import Config, EmailConfig, RateLimitConfig
from node.http.router import Router
from node.http.server import ApiResource

__all__ = ["PASSWORD", "SERVER", "V3", "FakeMailer", "ThreepidNode"]

V1 = "/_matrix/client/v1"


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, text: str) -> None:
        self.sent.append((to, subject, text))

    def last_code(self, to: str | None = None) -> str | None:
        for addr, _, text in reversed(self.sent):
            if to is None or addr == to:
                m = re.search(r"Your code: (\w+)", text)
                return m.group(1) if m else None
        raise AssertionError("no mail sent")

    def last_link(self) -> str:
        m = re.search(r"(https://\S+submit_token\S+)", self.sent[-1][2])
        assert m, self.sent[-1][2]
        return m.group(1)


class ThreepidNode(Node):
    def __init__(
        self,
        monkeypatch: Any,
        *,
        email: bool = True,
        email_registration: bool = False,
        rate_limits: RateLimitConfig | None = None,
    ) -> None:
        async def inline(self: Any, fn: Any, *args: Any) -> Any:
            return fn(*args)

        monkeypatch.setattr(AccountsService, "_on_thread", inline)
        self.reactor = task.Clock()
        self.reactor.advance(1_700_000_000)
        self.clock = ReactorClock(self.reactor)
        self.db = InlineDB()
        config = Config(
            server_name=SERVER,
            public_baseurl=f"https://{SERVER}/",
            rate_limits=rate_limits or RateLimitConfig(),
            email=EmailConfig(
                smtp_host="smtp.test" if email else "", registration=email_registration
            ),
        )
        self.router = Router()
        ctx = SimpleNamespace(
            config=config,
            reactor=self.reactor,
            clock=self.clock,
            db=self.db,
            router=self.router,
            server_name=SERVER,
        )
        self.accounts = wiring.wire(ctx)
        self.mailer = FakeMailer()
        if email:
            self.accounts.threepid_sessions.mailer = self.mailer
        self.resource = ApiResource(
            self.router, authenticate=self.accounts.authenticate, max_body_bytes=65536
        )

    def get_page(self, path: str, ip: str = "10.0.0.1") -> tuple[int, bytes, str | None]:
        """A GET whose answer is not JSON: (status, body, Location header)."""
        req = DummyRequest([])
        req.method = b"GET"
        path_only, _, query = path.partition("?")
        req.path = path_only.encode()
        req.uri = path.encode()
        req.args = {}
        for pair in filter(None, query.split("&")):
            k, _, v = pair.partition("=")
            req.args.setdefault(k.encode(), []).append(v.encode())
        req.content = io.BytesIO(b"")
        req._disconnected = False
        req.getClientAddress = lambda: SimpleNamespace(host=ip, port=1234)
        self.resource.render(req)
        assert req.finished
        location = req.responseHeaders.getRawHeaders(b"location")
        return (
            req.responseCode or 200,
            b"".join(req.written),
            location[0].decode() if location else None,
        )

    def login(self, localpart: str, password: str = PASSWORD) -> str:
        status, body = self.call(
            "POST",
            V3 + "/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password,
            },
        )
        assert status == 200, body
        return body["access_token"]

    def request_token(
        self, purpose_path: str, email: str, secret: str = "s3cret", attempt: int = 1, **extra: Any
    ) -> tuple[int, Any]:
        body = {"client_secret": secret, "email": email, "send_attempt": attempt, **extra}
        return self.call("POST", V3 + purpose_path, body)

    def validate(self, sid: str, secret: str = "s3cret", code: str | None = None) -> None:
        code = code or self.mailer.last_code()
        status, body = self.call(
            "POST",
            "/_parta/v1/threepid/email/submit_token",
            {"sid": sid, "client_secret": secret, "token": code},
        )
        assert (status, body) == (200, {"success": True}), body

    def add_address(self, token: str, localpart: str, email: str, secret: str = "s3cret") -> None:
        status, body = self.request_token("/account/3pid/email/requestToken", email, secret)
        assert status == 200, body
        sid = body["sid"]
        self.validate(sid, secret)
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": PASSWORD,
        }
        status, body = self.call(
            "POST",
            V3 + "/account/3pid/add",
            {"sid": sid, "client_secret": secret, "auth": auth},
            token=token,
        )
        if status == 401:
            status, body = self.call(
                "POST",
                V3 + "/account/3pid/add",
                {"sid": sid, "client_secret": secret, "auth": {**auth, "session": body["session"]}},
                token=token,
            )
        assert (status, body) == (200, {}), body
