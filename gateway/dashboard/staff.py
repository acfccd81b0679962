"""The dashboard's staff list of one school: the city staff directory (docs/people.md
"City-wide verified roles", ``gateway/directory/staff.py``) -- only attestations that
verified against the roster, so every row is a role the school signed."""

from __future__ import annotations

from typing import Any

from .html import Markup, html, join, or_dash, when

ROLE_NAMES = {"director": "Director", "deputy": "Deputy director", "teacher": "Teacher"}


def staff_table(gw: Any, server: str | None) -> Markup:
    staff = gw.staff
    if staff is None or not server:
        return Markup('<p class="muted">\u2014 The city staff directory is not running.</p>')
    if server not in staff.by_server:
        return Markup(
            '<p class="muted">\u2014 Not gathered yet: each school sends its signed staff '
            "roles with its statistics every few minutes.</p>"
        )
    rows = [
        html(
            '<tr><td>{name}</td><td class="mono">{uid}</td><td>{role}</td><td>{until}</td></tr>',
            name=or_dash(a.displayname),
            uid=a.user_id,
            role=ROLE_NAMES.get(a.role, a.role),
            until=when(a.expiry_ts),
        )
        for a in staff.current(server)
    ]
    if not rows:
        return Markup('<p class="muted">This school lists no staff in the city directory.</p>')
    return html(
        '<table class="staff"><thead><tr><th>Name</th><th>User</th><th>Role (verified)</th>'
        "<th>Attested until</th></tr></thead><tbody>{rows}</tbody></table>",
        rows=join(rows),
    )
