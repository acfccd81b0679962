"""Storage of roster versions, schools and enrolment tokens (``schema/gateway.py``).

Plain functions taking a SQLAlchemy ``Connection``: ``RosterService`` runs them inside one
transaction each through ``Database.run``, so publishing a version (read the latest, sign the
next, insert it) and consuming a token are atomic.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from federation.canonical_json import encode_canonical_json
from federation.roster import roster_hash
from schema.gateway import enrolment_tokens, roster_versions, schools

# --- roster versions ---------------------------------------------------------------------


def latest_doc(conn: Connection) -> dict | None:
    row = conn.execute(
        select(roster_versions.c.doc).order_by(roster_versions.c.version.desc()).limit(1)
    ).first()
    return json.loads(row.doc) if row else None


def get_doc(conn: Connection, version: int) -> dict | None:
    row = conn.execute(
        select(roster_versions.c.doc).where(roster_versions.c.version == version)
    ).first()
    return json.loads(row.doc) if row else None


def docs_after(conn: Connection, version: int, limit: int | None = None) -> list[dict]:
    q = (
        select(roster_versions.c.doc)
        .where(roster_versions.c.version > version)
        .order_by(roster_versions.c.version)
    )
    if limit is not None:
        q = q.limit(limit)
    return [json.loads(r.doc) for r in conn.execute(q)]


def version_rows(conn: Connection) -> list[Any]:
    """Every version's summary columns and document, oldest first."""
    return list(conn.execute(select(roster_versions).order_by(roster_versions.c.version)))


def insert_doc(conn: Connection, doc: dict) -> None:
    sigs = next(iter(doc["signatures"].values()))
    conn.execute(
        roster_versions.insert().values(
            version=doc["version"],
            sha256=roster_hash(doc),
            prev_sha256=doc["prev_sha256"],
            issued_ts=doc["issued_ts"],
            valid_until_ts=doc["valid_until_ts"],
            signer_key_id=next(iter(sigs)),
            server_count=len(doc["servers"]),
            doc=encode_canonical_json(doc).decode("utf-8"),
        )
    )


# --- schools -----------------------------------------------------------------------------


def get_school(conn: Connection, school_id: str) -> Any | None:
    return conn.execute(select(schools).where(schools.c.school_id == school_id)).first()


def school_by_server(conn: Connection, server_name: str) -> Any | None:
    return conn.execute(select(schools).where(schools.c.server_name == server_name)).first()


def list_schools(conn: Connection) -> list[dict]:
    rows = conn.execute(select(schools).order_by(schools.c.district, schools.c.name))
    return [dict(r._mapping) for r in rows]


def upsert_school(conn: Connection, school_id: str, now: int, **values: Any) -> None:
    if get_school(conn, school_id) is None:
        values.setdefault("status", "pending")
        conn.execute(
            schools.insert().values(school_id=school_id, created_ts=now, updated_ts=now, **values)
        )
    else:
        conn.execute(
            schools.update()
            .where(schools.c.school_id == school_id)
            .values(updated_ts=now, **values)
        )


def clear_server_name(conn: Connection, server_name: str, except_school: str) -> None:
    """Free a server name held by a revoked school (it may enrol again under another id)."""
    conn.execute(
        schools.update()
        .where(schools.c.server_name == server_name, schools.c.school_id != except_school)
        .values(server_name=None)
    )


# --- enrolment tokens --------------------------------------------------------------------


def insert_token(
    conn: Connection, token_id: str, verifier: str, school_id: str, created_ts: int, expires_ts: int
) -> None:
    conn.execute(
        enrolment_tokens.insert().values(
            token_id=token_id,
            verifier=verifier,
            school_id=school_id,
            created_ts=created_ts,
            expires_ts=expires_ts,
        )
    )


def get_token(conn: Connection, token_id: str) -> Any | None:
    return conn.execute(
        select(enrolment_tokens).where(enrolment_tokens.c.token_id == token_id)
    ).first()


def consume_token(conn: Connection, token_id: str, used_by: str, now: int) -> bool:
    """Mark the token used; False if it already was (a concurrent use lost the race)."""
    res = conn.execute(
        enrolment_tokens.update()
        .where(enrolment_tokens.c.token_id == token_id, enrolment_tokens.c.used_ts.is_(None))
        .values(used_ts=now, used_by=used_by)
    )
    return res.rowcount == 1


def void_tokens_of(conn: Connection, school_id: str, now: int) -> int:
    res = conn.execute(
        enrolment_tokens.update()
        .where(enrolment_tokens.c.school_id == school_id, enrolment_tokens.c.used_ts.is_(None))
        .values(used_ts=now, used_by="revoked")
    )
    return res.rowcount


def count_unused_tokens(conn: Connection, now: int) -> int:
    return conn.execute(
        select(func.count())
        .select_from(enrolment_tokens)
        .where(enrolment_tokens.c.used_ts.is_(None), enrolment_tokens.c.expires_ts >= now)
    ).scalar_one()
