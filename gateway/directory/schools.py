"""The city directory of schools (city services): every school the gateway knows,
with its enrolment status, searchable by name, district, server name or school ID.

Pure: combines the ``schools`` rows (``RosterService.list_schools``) with the current
roster; the roster is the truth about membership (a row says "enrolled" only while the
server is in the roster).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

MAX_QUERY = 100


def directory_entries(
    school_rows: Iterable[Mapping[str, Any]], roster_doc: Mapping[str, Any] | None
) -> list[dict]:
    """One JSON object per school: school_id, name, district, server (or None), class,
    status (enrolled/pending/revoked), enrolled_ts, revoked_ts, in_roster."""
    servers = dict(roster_doc.get("servers", {})) if roster_doc else {}
    out = []
    seen_servers = set()
    for row in school_rows:
        server = row.get("server_name")
        in_roster = (
            bool(server)
            and server in servers
            and servers[server].get("school_id") == row["school_id"]
        )
        status = row.get("status") or "pending"
        if status == "enrolled" and not in_roster:
            status = "revoked"
        out.append(
            {
                "school_id": row["school_id"],
                "name": row["name"],
                "district": row.get("district") or "",
                "server": server,
                "class": row.get("server_class") or "school",
                "status": status,
                "enrolled_ts": row.get("enrolled_ts"),
                "revoked_ts": row.get("revoked_ts"),
                "in_roster": in_roster,
            }
        )
        if in_roster:
            seen_servers.add(server)
    # Roster members without a row (e.g. published by hand): still listed.
    for server, e in servers.items():
        if server not in seen_servers:
            out.append(
                {
                    "school_id": e.get("school_id"),
                    "name": e.get("name"),
                    "district": e.get("district") or "",
                    "server": server,
                    "class": e.get("class"),
                    "status": "enrolled",
                    "enrolled_ts": None,
                    "revoked_ts": None,
                    "in_roster": True,
                }
            )
    out.sort(key=lambda d: (d["district"].casefold(), str(d["name"]).casefold()))
    return out


def search(
    entries: Iterable[dict], query: str | None, *, statuses: Iterable[str] | None = None
) -> list[dict]:
    """Entries whose name, district, server or school ID contain every word of ``query``
    (case-insensitive); ``statuses`` limits the statuses listed."""
    allowed = set(statuses) if statuses is not None else None
    words = (query or "").casefold().split()
    out = []
    for e in entries:
        if allowed is not None and e["status"] not in allowed:
            continue
        hay = " ".join(
            str(e.get(k) or "") for k in ("name", "district", "server", "school_id")
        ).casefold()
        if all(w in hay for w in words):
            out.append(e)
    return out
