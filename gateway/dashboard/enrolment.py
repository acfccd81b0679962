"""Dashboard enrolment: create one-time enrolment tokens (shown once) and revoke schools
(after a confirmation page).  Both are POST forms with the session's CSRF token; after a
change the browser is redirected (POST/redirect/GET), so reloading never repeats it."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from federation.errors import MatrixError
from node.http.server import Response

from ..directory import directory_entries
from .common import csrf_failed, csrf_field, csrf_ok, form, logged_in, redirect, render
from .html import Markup, badge, html, join, or_dash, when

log = logging.getLogger("parta.gateway.dashboard")

TTL_CHOICES = (("1", "1 day"), ("7", "7 days"), ("30", "30 days"))
DAY_MS = 24 * 3600 * 1000


def _path(segment: Any) -> str:
    return quote(str(segment), safe="")


def _token_box(gw: Any, token: str, school: str) -> Markup:
    url = gw.public_baseurl.rstrip("/")
    command = f"parta node enrol {url} --token {token} -c /path/to/config.yaml"
    return html(
        '<div class="panel" id="new-token"><h2>Enrolment token for {school}</h2>'
        "<p>Shown <strong>once</strong>: give it to the school\u2019s IT over a trusted "
        "channel. It works one time, until it expires.</p>"
        '<code class="token" id="token">{token}</code>'
        '<p>On the school node:</p><code class="token">{command}</code></div>',
        school=school,
        token=token,
        command=command,
    )


def _pending_and_enrolled(entries: list[dict], session: Any) -> Markup:
    rows = []
    for e in entries:
        if e["class"] == "city" or e["status"] == "revoked":
            continue
        action = html(
            '<a class="btn btn-ghost btn-small" href="/dashboard/schools/{id}/revoke">{label}</a>',
            id=_path(e["school_id"]),
            label="Revoke\u2026" if e["status"] == "enrolled" else "Cancel\u2026",
        )
        rows.append(
            html(
                '<tr><td><a href="/dashboard/schools/{id}">{name}</a></td>'
                '<td class="mono">{sid}</td><td>{district}</td>'
                '<td class="mono">{server}</td><td>{status}</td><td>{act}</td></tr>',
                id=_path(e["school_id"]),
                name=e["name"],
                sid=e["school_id"],
                district=or_dash(e["district"]),
                server=or_dash(e["server"]),
                status=badge(e["status"]),
                act=action,
            )
        )
    if not rows:
        rows.append(
            Markup('<tr><td colspan="6" class="empty">No schools enrolled or pending.</td></tr>')
        )
    return html(
        '<table class="enrolments"><thead><tr><th>School</th><th>ID</th>'
        "<th>District</th><th>Server</th><th>Status</th><th></th></tr></thead>"
        "<tbody>{rows}</tbody></table>",
        rows=join(rows),
    )


def register(router: Any, gw: Any) -> None:
    default_days = str(max(1, round(gw.token_ttl_ms / DAY_MS)))

    async def page(
        req: Any,
        session: Any,
        *,
        values: dict | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        tokens = [f for f in session.flash if f[0] == "token"]
        session.flash = [f for f in session.flash if f[0] != "token"]
        box = join(_token_box(gw, secret, msg) for _, msg, secret in tokens)
        v = values or {}
        chosen = v.get("ttl_days") or default_days
        choices = list(TTL_CHOICES)
        if default_days not in dict(choices):
            choices.append((default_days, f"{default_days} days"))
        options = join(
            html(
                '<option value="{val}"{sel}>{label}</option>',
                val=val,
                label=label,
                sel=Markup(" selected") if val == chosen else Markup(""),
            )
            for val, label in choices
        )
        err = (
            html('<div class="flash flash-error" role="alert">{e}</div>', e=error)
            if error
            else Markup("")
        )
        form_html = html(
            '<div class="panel"><h2>New enrolment token</h2>{err}'
            '<form class="stack" method="post" action="/dashboard/enrolment">{csrf}'
            '<div class="row"><div><label for="school_id">School ID</label>'
            '<input type="text" id="school_id" name="school_id" value="{sid}" required '
            'maxlength="64" placeholder="42"></div>'
            '<div><label for="name">School name</label><input type="text" id="name" '
            'name="name" value="{name}" required maxlength="255" placeholder="Lyceum No. 42">'
            '</div><div><label for="district">District</label><input type="text" '
            'id="district" name="district" value="{district}" maxlength="255" '
            'placeholder="North"></div><div><label for="ttl_days">Valid for</label>'
            '<select id="ttl_days" name="ttl_days">{options}</select></div></div>'
            '<div class="actions"><button class="btn" type="submit">Create token</button>'
            "</div></form></div>",
            err=err,
            csrf=csrf_field(session),
            sid=v.get("school_id", ""),
            name=v.get("name", ""),
            district=v.get("district", ""),
            options=options,
        )
        entries = directory_entries(await gw.roster.list_schools(), await gw.roster.current())
        body = html(
            "{box}{form}<h2>Schools</h2>{table}",
            box=box,
            form=form_html,
            table=_pending_and_enrolled(entries, session),
        )
        return render(gw, session, "Enrolment", body, active="enrolment", status=status)

    async def get_page(req: Any, session: Any) -> Response:
        return await page(req, session)

    async def create(req: Any, session: Any) -> Response:
        fields = form(req)
        if not csrf_ok(session, fields):
            return csrf_failed(gw, session)
        values = {
            k: fields.get(k, "").strip() for k in ("school_id", "name", "district", "ttl_days")
        }
        days = values["ttl_days"] or default_days
        if not days.isdigit() or not 1 <= int(days) <= 365:
            return await page(
                req,
                session,
                values=values,
                status=400,
                error="Valid for: choose a number of days between 1 and 365.",
            )
        try:
            token = await gw.roster.create_enrolment_token(
                values["school_id"], values["name"], values["district"], int(days) * DAY_MS
            )
        except MatrixError as exc:
            return await page(
                req, session, values=values, error=exc.message, status=exc.http_status
            )
        log.info(
            "event=enrolment_token_created school_id=%s by=%s", values["school_id"], session.user_id
        )
        session.flash.append(("token", f"{values['name']} (#{values['school_id']})", token))
        return redirect("/dashboard/enrolment#new-token")

    async def confirm(req: Any, session: Any, schoolId: str) -> Response:
        entries = directory_entries(await gw.roster.list_schools(), await gw.roster.current())
        e = next((x for x in entries if x["school_id"] == schoolId), None)
        if e is None:
            return render(
                gw,
                session,
                "School not found",
                html("<p>There is no school with ID {i}.</p>", i=schoolId),
                status=404,
            )
        what = (
            (
                "It will be removed from the roster: a new roster version is published "
                "without it, and every node stops federating with it within one refresh "
                "interval."
            )
            if e["status"] == "enrolled"
            else "Its unused enrolment tokens stop working."
        )
        body = html(
            '<div class="panel"><p>Revoke <strong>{name}</strong> (#{sid}, {server})?</p>'
            '<p>{what}</p><form method="post" action="/dashboard/schools/{id}/revoke">{csrf}'
            '<div class="actions"><button class="btn btn-danger" type="submit">'
            'Yes, revoke {name}</button><a class="btn btn-ghost" '
            'href="/dashboard/schools/{id}">Cancel</a></div></form></div>',
            name=e["name"],
            sid=e["school_id"],
            server=or_dash(e["server"]),
            what=what,
            id=_path(e["school_id"]),
            csrf=csrf_field(session),
        )
        return render(gw, session, "Revoke school", body, active="enrolment")

    async def revoke(req: Any, session: Any, schoolId: str) -> Response:
        fields = form(req)
        if not csrf_ok(session, fields):
            return csrf_failed(gw, session)
        before = await gw.roster.current()
        try:
            doc = await gw.roster.revoke(schoolId)
        except MatrixError as exc:
            return render(
                gw,
                session,
                "Revocation failed",
                html("<p>{m}</p>", m=exc.message),
                status=exc.http_status,
            )
        log.info("event=school_revoked school_id=%s by=%s", schoolId, session.user_id)
        if doc and before and doc["version"] != before["version"]:
            gw.roster_changed(doc)
            msg = (
                f"School #{schoolId} revoked: roster version {doc['version']} published "
                f"without it ({when(doc['issued_ts'])})."
            )
        else:
            msg = f"School #{schoolId} revoked (it was not in the roster)."
        session.flash.append(("ok", msg, None))
        return redirect("/dashboard/enrolment")

    router.add("GET", "/dashboard/enrolment", logged_in(gw, get_page), auth=False)
    router.add("POST", "/dashboard/enrolment", logged_in(gw, create), auth=False)
    router.add("GET", "/dashboard/schools/{schoolId}/revoke", logged_in(gw, confirm), auth=False)
    router.add("POST", "/dashboard/schools/{schoolId}/revoke", logged_in(gw, revoke), auth=False)
