"""Dashboard pages that show things: schools, one school, roster history, directory.

Live per-school data (last federation contact, queue depth, acknowledged roster version,
users/rooms counts, public rooms) comes from ``gateway.sources``; until server-server
federation provides it the columns honestly show "—".
"""

from __future__ import annotations

import json
from typing import Any

from federation.roster import roster_key_fingerprint
from node.http.server import Response

from ..directory import MAX_QUERY, directory_entries, search
from ..sources import UNKNOWN
from .common import logged_in, redirect, render
from .html import DASH, Markup, badge, check, html, join, or_dash, when
from .staff import staff_table
from .style import CSS


async def _entries(gw: Any) -> tuple[list[dict], dict | None]:
    doc = await gw.roster.current()
    return directory_entries(await gw.roster.list_schools(), doc), doc


def _school_link(e: dict) -> Markup:
    tag = (
        html('<span class="tag">{c}</span>', c="gateway" if e["class"] == "city" else e["class"])
        if e["class"] != "school"
        else Markup("")
    )
    return html(
        '<a href="/dashboard/schools/{id}">{name}</a>{tag}',
        id=_path(e["school_id"]),
        name=e["name"],
        tag=tag,
    )


def _server(e: dict) -> Markup:
    if not e["server"]:
        return Markup('<td class="muted">\u2014</td>')
    return html('<td class="mono">{s}</td>', s=e["server"])


def _path(segment: Any) -> str:
    from urllib.parse import quote

    return quote(str(segment), safe="")


def _num(value: Any) -> Markup:
    return html('<td class="num">{v}</td>', v=or_dash(value))


def _schools_table(entries: list[dict], statuses: dict, *, empty: str) -> Markup:
    rows = []
    for e in entries:
        st = statuses.get(e["server"], UNKNOWN) if e["server"] else UNKNOWN
        rows.append(
            html(
                '<tr><td>{link}<div class="muted mono">#{sid}</div></td><td>{district}</td>'
                "{server}<td>{status}</td><td>{contact}</td>{queue}{ack}"
                "{users}{rooms}{reports}</tr>",
                link=_school_link(e),
                sid=e["school_id"],
                district=or_dash(e["district"]),
                server=_server(e),
                status=badge(e["status"]),
                contact=when(st.last_contact_ts) if st.last_contact_ts is not None else DASH,
                queue=_num(st.outbound_queue_depth),
                ack=_num(st.roster_version_acked),
                users=_num(st.user_count),
                rooms=_num(st.room_count),
                reports=_num(st.report_count),
            )
        )
    if not rows:
        rows.append(html('<tr><td colspan="10" class="empty">{m}</td></tr>', m=empty))
    return html(
        '<table class="schools"><thead><tr><th>School</th><th>District</th><th>Server</th>'
        '<th>Status</th><th>Last federation contact</th><th class="num">Outbound queue</th>'
        '<th class="num">Roster ack\u2019d</th><th class="num">Users</th>'
        '<th class="num">Rooms</th><th class="num">Reports</th></tr></thead>'
        "<tbody>{rows}</tbody></table>",
        rows=join(rows),
    )


def register(router: Any, gw: Any) -> None:
    async def schools(req: Any, session: Any) -> Response:
        entries, doc = await _entries(gw)
        servers = [e["server"] for e in entries if e["server"]]
        statuses = await gw.status_source.status_of(servers)
        counts = {
            s: sum(1 for e in entries if e["status"] == s and e["class"] != "city")
            for s in ("enrolled", "pending", "revoked")
        }
        cards = html(
            '<div class="cards">'
            '<div class="card"><div class="num">{enr}</div><div class="label">schools enrolled'
            "</div></div>"
            '<div class="card"><div class="num">{pend}</div><div class="label">pending '
            "enrolment</div></div>"
            '<div class="card"><div class="num">{rev}</div><div class="label">revoked</div></div>'
            '<div class="card"><div class="num">{ver}</div><div class="label">roster version, '
            "valid until {until}</div></div></div>",
            enr=counts["enrolled"],
            pend=counts["pending"],
            rev=counts["revoked"],
            ver=doc["version"] if doc else DASH,
            until=when(doc["valid_until_ts"]) if doc else DASH,
        )
        note = Markup(
            '<p class="muted">\u201c\u2014\u201d: no data yet (the gateway '
            "gathers it from each school over federation).</p>"
        )
        body = html(
            "{cards}{table}{note}",
            cards=cards,
            note=note,
            table=_schools_table(
                entries, statuses, empty="No schools yet: create an enrolment token."
            ),
        )
        return render(gw, session, "Schools", body, active="schools")

    async def school(req: Any, session: Any, schoolId: str) -> Response:
        entries, doc = await _entries(gw)
        e = next((x for x in entries if x["school_id"] == schoolId), None)
        if e is None:
            return render(
                gw,
                session,
                "School not found",
                html("<p>There is no school with ID {i}.</p>", i=schoolId),
                active="schools",
                status=404,
            )
        st = UNKNOWN
        if e["server"]:
            st = (await gw.status_source.status_of([e["server"]])).get(e["server"], UNKNOWN)
        facts = html(
            '<dl class="facts"><dt>School ID</dt><dd class="mono">{sid}</dd>'
            '<dt>District</dt><dd>{district}</dd><dt>Server</dt><dd class="mono">{server}</dd>'
            "<dt>Class</dt><dd>{cls}</dd><dt>Status</dt><dd>{status}</dd>"
            "<dt>Enrolled</dt><dd>{enrolled}</dd><dt>Revoked</dt><dd>{revoked}</dd>"
            "<dt>Last federation contact</dt><dd>{contact}</dd>"
            "<dt>Outbound queue</dt><dd>{queue}</dd><dt>Roster version acknowledged</dt>"
            "<dd>{ack}</dd><dt>Users / rooms</dt><dd>{users} / {rooms}</dd>"
            "<dt>Content reports</dt><dd>{reports}</dd></dl>",
            sid=e["school_id"],
            district=or_dash(e["district"]),
            server=or_dash(e["server"]),
            cls=e["class"],
            status=badge(e["status"]),
            enrolled=when(e["enrolled_ts"]),
            revoked=when(e["revoked_ts"]),
            contact=when(st.last_contact_ts),
            queue=or_dash(st.outbound_queue_depth),
            ack=or_dash(st.roster_version_acked),
            users=or_dash(st.user_count),
            rooms=or_dash(st.room_count),
            reports=or_dash(st.report_count),
        )
        entry = (doc or {}).get("servers", {}).get(e["server"]) if e["server"] else None
        keys = _keys_table(entry)
        rooms = await gw.public_rooms.public_rooms(e["server"]) if e["server"] else None
        actions = Markup("")
        if e["status"] in ("enrolled", "pending") and e["class"] != "city":
            actions = html(
                '<div class="actions"><a class="btn btn-danger" '
                'href="/dashboard/schools/{id}/revoke">Revoke\u2026</a></div>',
                id=_path(e["school_id"]),
            )
        body = html(
            '<div class="panel">{facts}{actions}</div><h2>Pinned server keys</h2>'
            "{keys}<h2>Public rooms</h2>{rooms}<h2>Staff</h2>{staff}",
            facts=facts,
            actions=actions,
            keys=keys,
            rooms=_rooms_table(rooms),
            staff=staff_table(gw, e["server"]),
        )
        return render(gw, session, e["name"], body, active="schools")

    async def roster_history(req: Any, session: Any) -> Response:
        history = await gw.roster.history()
        vk = gw.roster.roster_verify_key
        key_info = html(
            '<div class="panel"><dl class="facts"><dt>Signed by</dt><dd class="mono">{signer}'
            '</dd><dt>Roster key</dt><dd class="mono">{kid}</dd><dt>Key fingerprint</dt>'
            '<dd class="mono">{fp}</dd><dt>Signing key</dt><dd>{online}</dd></dl></div>',
            signer=gw.server_name,
            kid=vk.key_id,
            fp=roster_key_fingerprint(vk),
            online="online (this gateway publishes)"
            if gw.roster.roster_key is not None
            else "offline (publishing disabled)",
        )
        rows = [
            html(
                '<tr><td><a href="/dashboard/roster/{v}">v{v}</a></td><td>{issued}</td>'
                '<td>{until}</td><td class="num">{n}</td><td class="mono">{kid}</td>'
                '<td class="mono" title="{sha}">{short}\u2026</td><td>{sig}</td>'
                "<td>{chain}</td></tr>",
                v=h["version"],
                issued=when(h["issued_ts"]),
                until=when(h["valid_until_ts"]),
                n=h["server_count"],
                kid=h["signer_key_id"],
                sha=h["sha256"],
                short=h["sha256"][:12],
                sig=check(h["signature_ok"]),
                chain=check(h["chain_ok"], "chained", "BROKEN"),
            )
            for h in history
        ]
        if not rows:
            rows = [Markup('<tr><td colspan="8" class="empty">No roster published.</td></tr>')]
        table = html(
            '<table class="roster"><thead><tr><th>Version</th><th>Issued</th>'
            '<th>Valid until</th><th class="num">Servers</th><th>Key</th>'
            "<th>SHA-256</th><th>Signature</th><th>Chain</th></tr></thead>"
            "<tbody>{rows}</tbody></table>",
            rows=join(rows),
        )
        return render(
            gw, session, "Roster history", html("{k}{t}", k=key_info, t=table), active="roster"
        )

    async def roster_version(req: Any, session: Any, version: str) -> Response:
        doc = await gw.roster.get(int(version)) if version.isdigit() and len(version) < 16 else None
        if doc is None:
            return render(
                gw,
                session,
                "No such roster version",
                html("<p>There is no roster version {v}.</p>", v=version),
                active="roster",
                status=404,
            )
        text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
        body = html(
            '<p><a href="/dashboard/roster">\u2190 all versions</a> \u00b7 '
            '<a href="/_parta/v1/roster/{v}">raw JSON</a></p>'
            '<pre class="json">{t}</pre>',
            v=doc["version"],
            t=text,
        )
        return render(gw, session, f"Roster version {doc['version']}", body, active="roster")

    async def directory(req: Any, session: Any) -> Response:
        q = (req.query("q", "") or "")[:MAX_QUERY]
        entries, _ = await _entries(gw)
        found = search(entries, q)
        rows = [
            html(
                "<tr><td>{link}</td><td>{district}</td>{server}<td>{status}</td></tr>",
                link=_school_link(e),
                district=or_dash(e["district"]),
                server=_server(e),
                status=badge(e["status"]),
            )
            for e in found
        ]
        if not rows:
            rows = [
                html(
                    '<tr><td colspan="4" class="empty">No school matches \u201c{q}\u201d.'
                    "</td></tr>",
                    q=q,
                )
            ]
        body = html(
            '<form class="search" method="get" action="/dashboard/directory" role="search">'
            '<input type="search" name="q" value="{q}" placeholder="School name, district or '
            'server" aria-label="Search schools" maxlength="{max}">'
            '<button class="btn" type="submit">Search</button></form>'
            '<p class="muted">{n} school(s)</p>'
            '<table class="directory"><thead><tr><th>School</th><th>District</th>'
            "<th>Server</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>",
            q=q,
            max=MAX_QUERY,
            n=len(found),
            rows=join(rows),
        )
        body = html("{b}{r}", b=body, r=await _room_results(gw, entries, q))
        return render(gw, session, "Directory", body, active="directory")

    async def style(req: Any) -> Response:
        return Response(
            200,
            CSS.encode("utf-8"),
            "text/css; charset=utf-8",
            {"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    async def root(req: Any) -> Response:
        return redirect("/dashboard/")

    router.add("GET", "/dashboard", root, auth=False)
    router.add("GET", "/dashboard/", logged_in(gw, schools), auth=False)
    router.add("GET", "/dashboard/style.css", style, auth=False)
    router.add("GET", "/dashboard/schools/{schoolId}", logged_in(gw, school), auth=False)
    router.add("GET", "/dashboard/roster", logged_in(gw, roster_history), auth=False)
    router.add("GET", "/dashboard/roster/{version}", logged_in(gw, roster_version), auth=False)
    router.add("GET", "/dashboard/directory", logged_in(gw, directory), auth=False)


def _keys_table(entry: dict | None) -> Markup:
    if not entry:
        return Markup('<p class="muted">Not in the current roster: no pinned keys.</p>')
    rows = [
        html(
            '<tr><td class="mono">{kid}</td><td class="mono">{key}</td><td>{st}</td></tr>',
            kid=kid,
            key=k.get("key"),
            st="current",
        )
        for kid, k in sorted(entry.get("verify_keys", {}).items())
    ]
    rows += [
        html(
            '<tr><td class="mono">{kid}</td><td class="mono">{key}</td><td>expired {ts}</td></tr>',
            kid=kid,
            key=k.get("key"),
            ts=when(k.get("expired_ts")),
        )
        for kid, k in sorted((entry.get("old_verify_keys") or {}).items())
    ]
    return html(
        '<table class="keys"><thead><tr><th>Key ID</th><th>Public key (Base64)</th>'
        "<th>State</th></tr></thead><tbody>{rows}</tbody></table>",
        rows=join(rows),
    )


async def _room_results(gw: Any, entries: list[dict], q: str) -> Markup:
    """The city's public rooms matching ``q`` (room name/topic/alias or school)."""
    directory = gw.directory
    if directory is None:
        return Markup("")
    from ..directory.rooms import filter_rooms

    names = {e["server"]: f"{e['name']} {e['district']}" for e in entries if e["server"]}
    found = filter_rooms(await directory.pairs(), term=q, school_names=names)
    by_server = {e["server"]: e for e in entries if e["server"] and e["in_roster"]}
    rows = [
        html(
            '<tr><td>{name}</td><td>{school}</td><td class="mono">{alias}</td>'
            '<td>{topic}</td><td class="num">{n}</td></tr>',
            name=or_dash(r.get("name")),
            school=_school_link(by_server[s]) if s in by_server else s,
            alias=or_dash(r.get("canonical_alias") or r.get("room_id")),
            topic=or_dash(r.get("topic")),
            n=or_dash(r.get("num_joined_members")),
        )
        for s, r in found
    ]
    if not rows:
        rows = [
            html(
                '<tr><td colspan="5" class="empty">No public room matches \u201c{q}'
                "\u201d.</td></tr>",
                q=q,
            )
        ]
    return html(
        '<h2>Public rooms</h2><p class="muted">{n} room(s), gathered from each '
        'school over federation</p><table class="rooms"><thead><tr><th>Room</th>'
        '<th>School</th><th>Alias</th><th>Topic</th><th class="num">Members</th>'
        "</tr></thead><tbody>{rows}</tbody></table>",
        n=len(found),
        rows=join(rows),
    )


def _rooms_table(rooms: list[dict] | None) -> Markup:
    if rooms is None:
        return Markup(
            '<p class="muted">\u2014 Not gathered yet: the gateway asks each '
            "school for its public rooms over federation (publicRooms) every few "
            "minutes.</p>"
        )
    if not rooms:
        return Markup('<p class="muted">This school publishes no public rooms.</p>')
    rows = [
        html(
            '<tr><td>{name}</td><td class="mono">{alias}</td><td>{topic}</td>'
            '<td class="num">{n}</td></tr>',
            name=or_dash(r.get("name")),
            alias=or_dash(r.get("canonical_alias") or r.get("room_id")),
            topic=or_dash(r.get("topic")),
            n=or_dash(r.get("num_joined_members")),
        )
        for r in rooms
    ]
    return html(
        '<table class="rooms"><thead><tr><th>Room</th><th>Alias</th><th>Topic</th>'
        '<th class="num">Members</th></tr></thead><tbody>{rows}</tbody></table>',
        rows=join(rows),
    )
