"""Storage of e-mail 3PIDs, validation sessions and account restrictions: plain functions
``fn(conn, ...)`` run via ``db.run`` (tables in ``schema/threepid.py``).

Each function is one step of a transaction; none of them touches the reactor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from schema.threepid import account_restrictions, threepid_validation_sessions, user_threepids

# --- 3PIDs on accounts ---------------------------------------------------------------------


def threepid_owner(conn: Connection, medium: str, address: str) -> str | None:
    row = conn.execute(
        select(user_threepids.c.user_id).where(
            user_threepids.c.medium == medium, user_threepids.c.address == address
        )
    ).first()
    return row[0] if row else None


def list_threepids(conn: Connection, user_id: str) -> list[dict]:
    rows = conn.execute(
        select(
            user_threepids.c.medium,
            user_threepids.c.address,
            user_threepids.c.validated_at,
            user_threepids.c.added_at,
        )
        .where(user_threepids.c.user_id == user_id)
        .order_by(user_threepids.c.added_at, user_threepids.c.address)
    )
    return [
        {"medium": m, "address": a, "validated_at": int(v), "added_at": int(t)}
        for m, a, v, t in rows
    ]


def count_threepids(conn: Connection, user_id: str) -> int:
    return int(
        conn.execute(select(func.count()).where(user_threepids.c.user_id == user_id)).scalar_one()
    )


def insert_threepid(
    conn: Connection, *, user_id: str, medium: str, address: str, validated_at: int, now_ms: int
) -> None:
    conn.execute(
        insert(user_threepids).values(
            user_id=user_id,
            medium=medium,
            address=address,
            validated_at=validated_at,
            added_at=now_ms,
        )
    )


def delete_threepid(conn: Connection, user_id: str, medium: str, address: str) -> bool:
    result = conn.execute(
        delete(user_threepids).where(
            user_threepids.c.user_id == user_id,
            user_threepids.c.medium == medium,
            user_threepids.c.address == address,
        )
    )
    return bool(result.rowcount)


def delete_user_threepids(conn: Connection, user_id: str) -> None:
    conn.execute(delete(user_threepids).where(user_threepids.c.user_id == user_id))


# --- validation sessions -------------------------------------------------------------------


def find_session(
    conn: Connection, *, client_secret: str, medium: str, address: str, purpose: str, now_ms: int
) -> dict | None:
    """The live session of this (client_secret, address, purpose), if any."""
    row = (
        conn.execute(
            select(threepid_validation_sessions).where(
                threepid_validation_sessions.c.client_secret == client_secret,
                threepid_validation_sessions.c.medium == medium,
                threepid_validation_sessions.c.address == address,
                threepid_validation_sessions.c.purpose == purpose,
                threepid_validation_sessions.c.expires_ts > now_ms,
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def get_session(conn: Connection, session_id: str) -> dict | None:
    row = (
        conn.execute(
            select(threepid_validation_sessions).where(
                threepid_validation_sessions.c.session_id == session_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def insert_session(conn: Connection, **values: Any) -> None:
    conn.execute(insert(threepid_validation_sessions).values(**values))


def update_session(conn: Connection, session_id: str, **values: Any) -> None:
    conn.execute(
        update(threepid_validation_sessions)
        .where(threepid_validation_sessions.c.session_id == session_id)
        .values(**values)
    )


def delete_session(conn: Connection, session_id: str) -> None:
    conn.execute(
        delete(threepid_validation_sessions).where(
            threepid_validation_sessions.c.session_id == session_id
        )
    )


def delete_expired_sessions(conn: Connection, now_ms: int) -> int:
    result = conn.execute(
        delete(threepid_validation_sessions).where(
            threepid_validation_sessions.c.expires_ts <= now_ms
        )
    )
    return int(result.rowcount or 0)


def count_live_sessions(conn: Connection, now_ms: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(threepid_validation_sessions.c.expires_ts > now_ms)
        ).scalar_one()
    )


# --- account restrictions ------------------------------------------------------------------


def all_restrictions(conn: Connection) -> dict[str, tuple[bool, bool]]:
    """user -> (locked, suspended) for every restricted account (few rows)."""
    rows = conn.execute(
        select(
            account_restrictions.c.user_id,
            account_restrictions.c.locked,
            account_restrictions.c.suspended,
        ).where((account_restrictions.c.locked) | (account_restrictions.c.suspended))
    )
    return {r[0]: (bool(r[1]), bool(r[2])) for r in rows}


def set_restriction(
    conn: Connection, user_id: str, *, locked: bool, suspended: bool, by: str, now_ms: int
) -> None:
    values = {"locked": locked, "suspended": suspended, "updated_ts": now_ms, "updated_by": by}
    result = conn.execute(
        update(account_restrictions)
        .where(account_restrictions.c.user_id == user_id)
        .values(**values)
    )
    if not result.rowcount:
        conn.execute(insert(account_restrictions).values(user_id=user_id, **values))
