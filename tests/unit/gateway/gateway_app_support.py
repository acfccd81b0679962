"""In-process gateway for the HTTP handler tests (not a test module): the real routes
(``gateway.api``, ``gateway.dashboard``) on a ``Router``, a real ``RosterService`` over an
in-memory SQLite database and a fake clock, and a small fake of the node's accounts.

``GatewayHarness.request`` dispatches like ``node.http.server.ApiResource``: route match
(404/405 ``M_UNRECOGNIZED``), bearer-token authentication, the handler, and
``MatrixError`` -> ``(status, {"errcode", "error"})``.  Everything completes synchronously.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus, urlencode

from support.clocks import fake_clock
from support.db import InlineDB
from support.deferreds import result_of

from federation.errors import MatrixError
from federation.keys import SigningKey
from gateway import api, dashboard
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.roster import RosterService
from node.accounts.guard import CredentialGuard
from node.http.request import ApiRequest, Requester
from node.http.router import Router
from node.http.server import Response

CITY = "city.example"
T0 = 1_700_000_000_000
DAY_MS = 24 * 3600 * 1000
ROSTER_KEY = SigningKey("roster_1", bytes(range(32)))
CITY_KEY = SigningKey("c1", b"\x0c" * 32)
PASSWORD = "office password"


class FakeAccounts:
    """Users by ID: (password, role); access tokens -> user ID."""

    def __init__(self, clock: Any = None) -> None:
        self.users: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, str] = {}
        self.login_limiter = None
        # The node's real lockout, so dashboard logins are judged by it.
        self.guard = (
            CredentialGuard(clock, attempts_per_second=1.0, attempts_burst=30)
            if clock is not None
            else None
        )

    def add(self, localpart: str, role: str, password: str = PASSWORD) -> str:
        user_id = f"@{localpart}:{CITY}"
        self.users[user_id] = (password, role)
        self.tokens[f"tok-{localpart}"] = user_id
        return user_id

    def user_id_for(self, localpart: str) -> str:
        return f"@{localpart}:{CITY}"

    async def resolve_login_user(self, identifier: str) -> str | None:
        if identifier.startswith("@"):
            return identifier if identifier.endswith(":" + CITY) else None
        return self.user_id_for(identifier)

    async def check_password(self, user_id: str, password: str) -> bool:
        entry = self.users.get(user_id)
        return entry is not None and entry[0] == password

    async def verify_password(self, user_id: str | None, password: str, ip: str | None) -> bool:
        """The node's check in small: lockout first, then the password, failures counted."""
        if self.guard is not None:
            self.guard.check_not_locked(ip, user_id)
        ok = user_id is not None and await self.check_password(user_id, password)
        if not ok and self.guard is not None:
            self.guard.failed(ip, user_id)
        return ok

    async def get_role(self, user_id: str) -> str | None:
        entry = self.users.get(user_id)
        return entry[1] if entry else None

    async def authenticate(self, req: Any, token: str) -> Requester:
        user_id = self.tokens.get(token)
        if user_id is None:
            raise MatrixError("Unknown access token", errcode="M_UNKNOWN_TOKEN", http_status=401)
        return Requester(user_id, "DEV")


@dataclass
class Reply:
    status: int
    body: Any  # JSON, or text for HTML responses
    headers: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


class GatewayHarness:
    def __init__(self, *, with_roster: bool = True, dashboard_enabled: bool = True) -> None:
        self.db = InlineDB()
        self.clock = fake_clock(T0)
        self.roster = RosterService(
            self.db, self.clock, CITY, ROSTER_KEY, DAY_MS, token_ttl_ms=DAY_MS
        )
        if with_roster:
            result_of(
                self.roster.add_server(
                    CITY,
                    school_id="city",
                    name="City office",
                    server_class="city",
                    verify_keys=[CITY_KEY.verify_key],
                )
            )
        self.accounts = FakeAccounts(self.clock)
        self.office = self.accounts.add("office", "office")
        self.teacher = self.accounts.add("teacher", "teacher")
        config = SimpleNamespace(
            server_name=CITY,
            public_baseurl="https://city.example/",
            client_listener=SimpleNamespace(tls_certificate_path=None),
            data_dir="/nonexistent",
            default_room_version="12",
        )
        self.gw = Gateway(
            config=config,
            gw_config=GatewayConfig(),
            roster=self.roster,
            accounts=self.accounts,
            clock=self.clock,
        )
        self.changes: list[dict] = []
        self.gw.add_roster_listener(self.changes.append)
        self.router = Router()
        api.register(self.router, self.gw)
        if dashboard_enabled:
            dashboard.register(self.router, self.gw)
        self.cookies: dict[str, str] = {}

    def now(self) -> int:
        return self.clock.time_ms()

    def advance(self, seconds: float) -> None:
        self.clock.reactor.advance(seconds)

    # --- requests ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw: bytes | None = None,
        form: dict | None = None,
        token: str | None = None,
        headers: dict | None = None,
        cookies: bool = True,
        client_ip: str = "127.0.0.1",
    ) -> Reply:
        path, _, query = path.partition("?")
        args: dict[str, list[str]] = {}
        for part in filter(None, query.split("&")):
            k, _, v = part.partition("=")
            args.setdefault(unquote_plus(k), []).append(unquote_plus(v))
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        body = b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("content-type", "application/json")
        elif form is not None:
            body = urlencode(form).encode()
            hdrs.setdefault("content-type", "application/x-www-form-urlencoded")
        elif raw is not None:
            body = raw
        if token is not None:
            hdrs["authorization"] = f"Bearer {token}"
        if cookies and self.cookies and "cookie" not in hdrs:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        req = ApiRequest(method, path, args, hdrs, body, client_ip)
        try:
            route, params, known = self.router.match(method, path)
            if route is None:
                raise MatrixError(
                    "Unrecognized request",
                    errcode="M_UNRECOGNIZED",
                    http_status=405 if known else 404,
                )
            if route.auth or route.auth_optional:
                tok = hdrs.get("authorization", "")[7:] or None
                if tok is None and route.auth:
                    raise MatrixError(
                        "Missing access token", errcode="M_MISSING_TOKEN", http_status=401
                    )
                if tok is not None:
                    req.requester = result_of(self.accounts.authenticate(req, tok))
            result = result_of(route.handler(req, **params))
        except MatrixError as exc:
            return Reply(exc.http_status, exc.to_json())
        if isinstance(result, Response):
            reply = Reply(result.status, result.body.decode("utf-8"), dict(result.headers))
            reply.content_type = result.content_type
            self._remember_cookie(reply)
            return reply
        status, data = result
        return Reply(status, json.loads(json.dumps(data)))

    def _remember_cookie(self, reply: Reply) -> None:
        cookie = reply.headers.get("Set-Cookie")
        if not cookie:
            return
        name, _, rest = cookie.partition("=")
        value = rest.split(";")[0]
        if "Max-Age=0" in cookie or not value:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    # --- dashboard helpers ---------------------------------------------------------------
    def login(self, username: str = "office", password: str = PASSWORD) -> Reply:
        page = self.request("GET", "/dashboard/login")
        csrf = hidden_value(page.body, "csrf")
        return self.request(
            "POST",
            "/dashboard/login",
            form={"username": username, "password": password, "csrf": csrf},
        )

    def csrf(self, path: str = "/dashboard/enrolment") -> str:
        return hidden_value(self.request("GET", path).body, "csrf")


def hidden_value(html_text: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = html_text.index(marker) + len(marker)
    return html_text[start : html_text.index('"', start)]
