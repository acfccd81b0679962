"""Minimal HTML building with escaping by default (the dashboard has no template engine).

``html(template, **values)`` formats ``template`` (``str.format`` syntax) with every value
HTML-escaped (``&<>"'``) unless it is already ``Markup``; the result is ``Markup``.  So a
school name such as ``<script>`` is always shown as text, whatever page it lands on, and an
attribute value cannot break out of its quotes.  ``join`` concatenates Markup pieces.
"""

from __future__ import annotations

import html as _html
import time
from typing import Any, Iterable


class Markup(str):
    """A string that is already safe HTML."""


def escape(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(_html.escape("" if value is None else str(value), quote=True))


def html(template: str, **values: Any) -> Markup:
    return Markup(template.format(**{k: escape(v) for k, v in values.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(Markup(sep).join(escape(p) for p in parts))


DASH = "\u2014"  # shown where there is no data ("—"), never a made-up zero


def or_dash(value: Any) -> Any:
    return DASH if value is None or value == "" else value


def when(ms: int | None) -> str:
    if ms is None:
        return DASH
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + " UTC"


def badge(status: str) -> Markup:
    kind = {"enrolled": "ok", "pending": "warn", "revoked": "off", "ok": "ok", "failed": "bad"}.get(
        status, "off"
    )
    return html('<span class="badge badge-{k}">{s}</span>', k=kind, s=status)


def check(ok: bool, yes: str = "verified", no: str = "FAILED") -> Markup:
    return html(
        '<span class="badge badge-{k}">{mark} {t}</span>',
        k="ok" if ok else "bad",
        mark="\u2713" if ok else "\u2717",
        t=yes if ok else no,
    )


NAV = (
    ("schools", "/dashboard/", "Schools"),
    ("enrolment", "/dashboard/enrolment", "Enrolment"),
    ("roster", "/dashboard/roster", "Roster"),
    ("directory", "/dashboard/directory", "Directory"),
)


def layout(
    *,
    title: str,
    body: Markup,
    server_name: str,
    active: str = "",
    user_id: str | None = None,
    csrf: str | None = None,
    flash: Iterable[tuple[str, Any]] = (),
    narrow: bool = False,
) -> bytes:
    nav = (
        join(
            html(
                '<a href="{href}"{cur}>{label}</a>',
                href=href,
                label=label,
                cur=Markup(' class="active" aria-current="page"') if key == active else Markup(""),
            )
            for key, href, label in NAV
        )
        if user_id
        else Markup("")
    )
    who = Markup("")
    if user_id:
        who = html(
            '<form class="logout" method="post" action="/dashboard/logout">'
            '<span class="who">{u}</span>'
            '<input type="hidden" name="csrf" value="{c}">'
            '<button type="submit" class="link">Log out</button></form>',
            u=user_id,
            c=csrf or "",
        )
    notes = join(
        html('<div class="flash flash-{k}" role="status">{m}</div>', k=kind, m=msg)
        for kind, msg in flash
    )
    page = html(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title} \u00b7 Parta city office</title>"
        '<link rel="stylesheet" href="/dashboard/style.css"></head>'
        '<body><header class="top"><div class="brand"><span class="logo">P</span>'
        "<span>Parta <small>city office \u00b7 {server}</small></span></div>"
        "<nav>{nav}</nav>{who}</header>"
        "<main{cls}>{notes}<h1>{title}</h1>{body}</main>"
        "<footer>Parta gateway {server}</footer></body></html>\n",
        title=title,
        server=server_name,
        nav=nav,
        who=who,
        notes=notes,
        body=body,
        cls=Markup(' class="narrow"') if narrow else Markup(""),
    )
    return page.encode("utf-8")


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
