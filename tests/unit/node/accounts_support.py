"""In-process harness for the accounts area (not a test module).

The real ``wire`` (service, limiters, UIA, routes) behind the real ``ApiResource``, on an
in-memory SQLite database whose ``db.run`` completes synchronously, a
``twisted.internet.task.Clock`` for time (tests move it by hand) and password hashing run
inline instead of on the KDF threads, so every request finishes inside ``render``.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

from support.db import InlineDB
from twisted.internet import defer, task
from twisted.web.test.requesthelper import DummyRequest

import schema.accounts  # noqa: F401 - registers the tables
from node.accounts import wiring
from node.accounts.service import AccountsService
from node.clock import ReactorClock
from node.config import Config, RateLimitConfig, RegistrationConfig
from node.http.router import Router
from node.http.server import ApiResource

SERVER = "school.test"
PASSWORD = "correct horse battery"
V3 = "/_matrix/client/v3"


class Node:
    """One accounts area; ``call`` sends a request from a chosen client IP."""

    def __init__(
        self,
        monkeypatch: Any,
        *,
        rate_limits: RateLimitConfig | None = None,
        open_registration: bool = False,
    ) -> None:
        async def inline(self: Any, fn: Any, *args: Any) -> Any:
            return fn(*args)

        monkeypatch.setattr(AccountsService, "_on_thread", inline)
        self.reactor = task.Clock()
        self.reactor.advance(1_700_000_000)
        self.clock = ReactorClock(self.reactor)
        self.db = InlineDB()
        # The real configuration with its defaults: each accounts feature reads its own part.
        config = Config(
            server_name=SERVER,
            public_baseurl=f"https://{SERVER}",
            rate_limits=rate_limits or RateLimitConfig(),
            registration=RegistrationConfig(open_registration=open_registration),
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
        self.resource = ApiResource(
            self.router, authenticate=self.accounts.authenticate, max_body_bytes=65536
        )

    def run(self, coro: Any) -> Any:
        d = defer.ensureDeferred(coro)
        out: list = []
        d.addBoth(out.append)
        assert out, "did not complete synchronously"
        if hasattr(out[0], "raiseException"):
            out[0].raiseException()
        return out[0]

    def add_user(
        self,
        localpart: str,
        password: str = PASSWORD,
        role: str = "teacher",
        display_name: str | None = None,
    ) -> str:
        return self.run(self.accounts.create_user(localpart, password, role, display_name))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        ip: str = "10.0.0.1",
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        req = DummyRequest([])
        req.method = method.encode()
        path_only, _, query = path.partition("?")
        req.path = path_only.encode()
        req.uri = path.encode()
        req.args = {}
        for pair in filter(None, query.split("&")):
            k, _, v = pair.partition("=")
            req.args.setdefault(k.encode(), []).append(v.encode())
        req.content = io.BytesIO(data)
        req._disconnected = False
        req.client = SimpleNamespace(host=ip, port=1234)
        req.getClientAddress = lambda: SimpleNamespace(host=ip, port=1234)
        req.requestHeaders.setRawHeaders(b"content-length", [str(len(data)).encode()])
        if token:
            req.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
        self.resource.render(req)
        assert req.finished, "request did not complete synchronously"
        payload = b"".join(req.written)
        return (req.responseCode or 200), (json.loads(payload) if payload else None)

    def login(
        self, user: str, password: str = PASSWORD, ip: str = "10.0.0.1", **extra: Any
    ) -> tuple[int, Any]:
        return self.call(
            "POST",
            V3 + "/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
                **extra,
            },
            ip=ip,
        )

    def token_for(self, user: str, **extra: Any) -> str:
        status, body = self.login(user, **extra)
        assert status == 200, body
        return body["access_token"]
