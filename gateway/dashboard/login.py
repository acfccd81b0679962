"""Dashboard login and logout: city office accounts of the gateway node only.

The password is checked by the node's ``AccountsService.verify_password`` (argon2, off the
reactor thread) and the account must have the role ``office``; failures say nothing about
which part was wrong.  Attempts are limited per client IP by the node's login limiter.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.errors import MatrixError

from .common import FormError, form, html_response, redirect, render, session_of
from .html import html, layout
from .sessions import LOGIN_COOKIE, SESSION_COOKIE, cookie_header, new_token, parse_cookies, same

log = logging.getLogger("parta.gateway.dashboard")


def _login_page(gw: Any, *, error: str | None, username: str, token: str, status: int = 200) -> Any:
    flash = [("error", error)] if error else []
    body = html(
        '<div class="panel"><form class="stack" method="post" '
        'action="/dashboard/login">'
        '<input type="hidden" name="csrf" value="{tok}">'
        '<label for="username">Username</label>'
        '<input type="text" id="username" name="username" value="{user}" '
        'autocomplete="username" autofocus required>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" '
        'autocomplete="current-password" required>'
        '<div class="actions"><button class="btn" type="submit">Log in</button></div>'
        '</form></div><p class="muted">City office accounts of {server} only.</p>',
        tok=token,
        user=username,
        server=gw.server_name,
    )
    page = layout(
        title="City office login", body=body, server_name=gw.server_name, flash=flash, narrow=True
    )
    cookie = cookie_header(LOGIN_COOKIE, token, max_age=3600, secure=gw.secure_cookies)
    return html_response(status, page, cookie=cookie)


def register(router: Any, gw: Any) -> None:
    async def get_login(req: Any) -> Any:
        _, session = session_of(gw, req)
        if session is not None:
            return redirect("/dashboard/")
        return _login_page(gw, error=None, username="", token=new_token())

    async def post_login(req: Any) -> Any:
        try:
            fields = form(req)
        except FormError as exc:
            return _login_page(gw, error=str(exc), username="", token=new_token(), status=400)
        username = fields.get("username", "").strip()[:255]
        expected = parse_cookies(req.headers.get("cookie")).get(LOGIN_COOKIE)
        if not same(expected, fields.get("csrf")):
            return _login_page(
                gw,
                error="The login form expired; please try again.",
                username=username,
                token=new_token(),
                status=403,
            )
        limiter = gw.accounts.login_limiter
        if limiter is not None:
            try:
                limiter.check("ip:" + (req.client_ip or "?"))
            except MatrixError:
                return _login_page(
                    gw,
                    error="Too many login attempts; wait a minute.",
                    username=username,
                    token=new_token(),
                    status=429,
                )
        user_id = await gw.accounts.resolve_login_user(username) if username else None
        try:
            # The node's one password check: failures here count toward the same lockout
            # as /login and user-interactive auth (docs/security.md).
            ok = await gw.accounts.verify_password(
                user_id, fields.get("password", ""), req.client_ip
            )
        except MatrixError as exc:
            status = 429 if exc.errcode == "M_LIMIT_EXCEEDED" else 403
            message = (
                "Too many login attempts; wait a minute."
                if status == 429
                else "Invalid username or password."
            )
            log.info("event=dashboard_login_failed ip=%s reason=%s", req.client_ip, exc.errcode)
            return _login_page(
                gw, error=message, username=username, token=new_token(), status=status
            )
        role = await gw.accounts.get_role(user_id) if ok and user_id else None
        if not ok or user_id is None:
            log.info("event=dashboard_login_failed ip=%s", req.client_ip)
            return _login_page(
                gw,
                error="Invalid username or password.",
                username=username,
                token=new_token(),
                status=403,
            )
        if role != "office":
            log.info("event=dashboard_login_refused user_id=%s role=%s", user_id, role)
            return _login_page(
                gw,
                error="Only city office accounts may use the dashboard.",
                username=username,
                token=new_token(),
                status=403,
            )
        token, session = gw.sessions.create(user_id)
        log.info("event=dashboard_login user_id=%s", user_id)
        max_age = max(1, (session.expires_ms - session.created_ms) // 1000)
        return redirect(
            "/dashboard/",
            cookie=cookie_header(SESSION_COOKIE, token, max_age=max_age, secure=gw.secure_cookies),
        )

    async def post_logout(req: Any) -> Any:
        token, session = session_of(gw, req)
        if session is not None:
            try:
                fields = form(req)
            except FormError:
                fields = {}
            if not same(session.csrf, fields.get("csrf")):
                return render(
                    gw,
                    session,
                    "Form expired",
                    html("<p>Reload the page and log out again.</p>"),
                    status=403,
                )
            gw.sessions.delete(token)
            log.info("event=dashboard_logout user_id=%s", session.user_id)
        return redirect(
            "/dashboard/login",
            cookie=cookie_header(SESSION_COOKIE, "", max_age=0, secure=gw.secure_cookies),
        )

    router.add("GET", "/dashboard/login", get_login, auth=False)
    router.add("POST", "/dashboard/login", post_login, auth=False)
    router.add("POST", "/dashboard/logout", post_logout, auth=False)
