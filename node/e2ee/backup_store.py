"""Database functions of server-side key backups (``e2ee_backup_versions``,
``e2ee_backup_keys``; client-server API "Server-side key backups").  Each runs inside
``Database.run``'s transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from schema.e2ee import e2ee_backup_keys as bk
from schema.e2ee import e2ee_backup_versions as bv


@dataclass(frozen=True)
class Version:
    version: int
    algorithm: str
    auth_data: dict
    etag: int
    deleted: bool


@dataclass(frozen=True)
class SessionKey:
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict

    def to_json(self) -> dict:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }

    def better_than(self, old: "SessionKey") -> bool:
        """The spec's rule for a session already backed up ("Server-side key backups"):
        a verified key wins over an unverified one; then the lower
        ``first_message_index``; then the lower ``forwarded_count``."""
        if self.is_verified != old.is_verified:
            return self.is_verified
        if self.first_message_index != old.first_message_index:
            return self.first_message_index < old.first_message_index
        return self.forwarded_count < old.forwarded_count


def _version(row: Any) -> Version:
    return Version(
        int(row.version),
        row.algorithm,
        orjson.loads(row.auth_data),
        int(row.etag),
        bool(row.deleted),
    )


def get_version(conn: Connection, user_id: str, version: int | None) -> Version | None:
    """A live version (None: the latest live one)."""
    q = select(bv).where(bv.c.user_id == user_id, bv.c.deleted.is_(False))
    if version is None:
        q = q.order_by(bv.c.version.desc()).limit(1)
    else:
        q = q.where(bv.c.version == version)
    row = conn.execute(q).first()
    return None if row is None else _version(row)


def create_version(conn: Connection, user_id: str, algorithm: str, auth_data: dict) -> int:
    """A new version, numbered after every earlier one (deleted ones included)."""
    top = conn.execute(select(func.max(bv.c.version)).where(bv.c.user_id == user_id)).scalar()
    version = int(top or 0) + 1
    conn.execute(
        insert(bv).values(
            user_id=user_id,
            version=version,
            algorithm=algorithm,
            auth_data=orjson.dumps(auth_data).decode(),
            etag=0,
            deleted=False,
        )
    )
    return version


def update_auth_data(conn: Connection, user_id: str, version: int, auth_data: dict) -> None:
    conn.execute(
        update(bv)
        .where(bv.c.user_id == user_id, bv.c.version == version)
        .values(auth_data=orjson.dumps(auth_data).decode())
    )


def delete_version(conn: Connection, user_id: str, version: int) -> bool:
    gone = conn.execute(
        update(bv)
        .where(bv.c.user_id == user_id, bv.c.version == version, bv.c.deleted.is_(False))
        .values(deleted=True)
    ).rowcount
    conn.execute(delete(bk).where(bk.c.user_id == user_id, bk.c.version == version))
    return gone == 1


def count(conn: Connection, user_id: str, version: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(bk.c.user_id == user_id, bk.c.version == version)
        ).scalar_one()
    )


def bump_etag(conn: Connection, user_id: str, version: int) -> int:
    conn.execute(
        update(bv)
        .where(bv.c.user_id == user_id, bv.c.version == version)
        .values(etag=bv.c.etag + 1)
    )
    return int(
        conn.execute(
            select(bv.c.etag).where(bv.c.user_id == user_id, bv.c.version == version)
        ).scalar_one()
    )


def put_keys(
    conn: Connection,
    user_id: str,
    version: int,
    keys: list[tuple[str, str, SessionKey]],
    max_keys: int,
) -> bool:
    """Store sessions by the replacement rule; False when the version would hold more than
    ``max_keys`` sessions (nothing is stored then)."""
    changed = False
    stored = count(conn, user_id, version)
    for room_id, session_id, new in keys:
        where = (
            bk.c.user_id == user_id,
            bk.c.version == version,
            bk.c.room_id == room_id,
            bk.c.session_id == session_id,
        )
        row = conn.execute(
            select(bk.c.first_message_index, bk.c.forwarded_count, bk.c.is_verified).where(*where)
        ).first()
        if row is not None:
            old = SessionKey(
                int(row.first_message_index), int(row.forwarded_count), bool(row.is_verified), {}
            )
            if not new.better_than(old):
                continue
            conn.execute(delete(bk).where(*where))
        else:
            stored += 1
            if stored > max_keys:
                return False
        conn.execute(
            insert(bk).values(
                user_id=user_id,
                version=version,
                room_id=room_id,
                session_id=session_id,
                first_message_index=new.first_message_index,
                forwarded_count=new.forwarded_count,
                is_verified=new.is_verified,
                session_data=orjson.dumps(new.session_data).decode(),
            )
        )
        changed = True
    if changed:
        bump_etag(conn, user_id, version)
    return True


def get_keys(
    conn: Connection,
    user_id: str,
    version: int,
    room_id: str | None = None,
    session_id: str | None = None,
) -> dict[str, dict[str, dict]]:
    """room -> session -> KeyBackupData."""
    q = select(bk).where(bk.c.user_id == user_id, bk.c.version == version)
    if room_id is not None:
        q = q.where(bk.c.room_id == room_id)
    if session_id is not None:
        q = q.where(bk.c.session_id == session_id)
    out: dict[str, dict[str, dict]] = {}
    for r in conn.execute(q.order_by(bk.c.room_id, bk.c.session_id)):
        key = SessionKey(
            int(r.first_message_index),
            int(r.forwarded_count),
            bool(r.is_verified),
            orjson.loads(r.session_data),
        )
        out.setdefault(r.room_id, {})[r.session_id] = key.to_json()
    return out


def delete_keys(
    conn: Connection,
    user_id: str,
    version: int,
    room_id: str | None = None,
    session_id: str | None = None,
) -> None:
    q = delete(bk).where(bk.c.user_id == user_id, bk.c.version == version)
    if room_id is not None:
        q = q.where(bk.c.room_id == room_id)
    if session_id is not None:
        q = q.where(bk.c.session_id == session_id)
    if conn.execute(q).rowcount:
        bump_etag(conn, user_id, version)
