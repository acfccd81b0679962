"""Request plumbing shared by the dashboard pages: HTML responses with security headers,
redirects, form bodies, the login guard and CSRF checks."""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from node.http.server import Response

from .html import SECURITY_HEADERS, Markup, html, layout
from .sessions import SESSION_COOKIE, Session, parse_cookies, same

HTML_TYPE = "text/html; charset=utf-8"
MAX_FORM_FIELDS = 20


def html_response(status: int, body: bytes, *, cookie: str | None = None) -> Response:
    headers = dict(SECURITY_HEADERS)
    if cookie is not None:
        headers["Set-Cookie"] = cookie
    return Response(status, body, HTML_TYPE, headers)


def redirect(location: str, *, cookie: str | None = None) -> Response:
    headers = dict(SECURITY_HEADERS)
    headers["Location"] = location
    if cookie is not None:
        headers["Set-Cookie"] = cookie
    return Response(303, b"", HTML_TYPE, headers)


def form(req: Any) -> dict[str, str]:
    """The urlencoded body as name -> last value (400 page on anything else)."""
    ctype = req.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        raise FormError("Expected a form submission")
    try:
        text = req.body.decode("utf-8")
        parsed = parse_qs(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError("The form could not be read") from None
    return {k: v[-1] for k, v in parsed.items()}


class FormError(Exception):
    """A submission the dashboard cannot use (400 page)."""


def session_of(gw: Any, req: Any) -> tuple[str | None, Session | None]:
    token = parse_cookies(req.headers.get("cookie")).get(SESSION_COOKIE)
    return token, gw.sessions.get(token)


Page = Callable[..., Awaitable[Any]]


def logged_in(gw: Any, handler: Page) -> Page:
    """Wrap a page: no valid session -> redirect to the login page; the handler receives
    ``(req, session, **params)``."""

    async def wrapper(req: Any, **params: str) -> Any:
        _, session = session_of(gw, req)
        if session is None:
            return redirect("/dashboard/login")
        try:
            return await handler(req, session, **params)
        except FormError as exc:
            return render(gw, session, "Bad request", html("<p>{m}</p>", m=str(exc)), status=400)

    return wrapper


def csrf_ok(session: Session, fields: dict[str, str]) -> bool:
    return same(session.csrf, fields.get("csrf"))


def csrf_failed(gw: Any, session: Session) -> Response:
    return render(
        gw,
        session,
        "Form expired",
        Markup(
            "<p>This form was not sent from the current dashboard session "
            "(it may be outdated). Go back, reload the page and try again.</p>"
        ),
        status=403,
    )


def render(
    gw: Any,
    session: Session | None,
    title: str,
    body: Markup,
    *,
    active: str = "",
    status: int = 200,
) -> Response:
    flash: list[tuple[str, Any]] = []
    if session is not None:
        flash = [(kind, msg) for kind, msg, _ in session.flash if kind != "token"]
        session.flash = [f for f in session.flash if f[0] == "token"]
    page = layout(
        title=title,
        body=body,
        server_name=gw.server_name,
        active=active,
        user_id=session.user_id if session else None,
        csrf=session.csrf if session else None,
        flash=flash,
    )
    return html_response(status, page)


def csrf_field(session: Session) -> Markup:
    return html('<input type="hidden" name="csrf" value="{c}">', c=session.csrf)
