"""Persistent cache of other servers' key responses (the key ring's ``KeyStore``).

Spec: server-server API "Retrieving server keys": a validated ``/_matrix/key/v2/server``
response may be reused until its keys expire; keeping it across restarts spares the
remote server (and us) a fetch per key after every start.  Table
``schema.federation.remote_server_keys``: one row per (server, set of key IDs), replaced
when a newer response lists the same keys.  The key ring re-validates every stored
response when it loads it.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import delete, insert, select

from schema.federation import remote_server_keys as t

MAX_ROWS_PER_SERVER = 8


def _key_ids(response: dict) -> str:
    ids: set[str] = set()
    for field in ("verify_keys", "old_verify_keys"):
        keys = response.get(field)
        if isinstance(keys, dict):
            ids.update(k for k in keys if isinstance(k, str))
    return ",".join(sorted(ids))[:1024]


def _load(conn: Any, server_name: str) -> list[tuple[dict, int]]:
    rows = conn.execute(
        select(t.c.response, t.c.received_ts)
        .where(t.c.server_name == server_name)
        .order_by(t.c.received_ts.desc())
        .limit(MAX_ROWS_PER_SERVER)
    )
    out = []
    for text, ts in rows:
        try:
            out.append((orjson.loads(text), int(ts)))
        except orjson.JSONDecodeError:
            continue
    return out


def _save(conn: Any, server_name: str, response: dict, received_ts: int) -> None:
    ids = _key_ids(response)
    conn.execute(delete(t).where(t.c.server_name == server_name, t.c.key_ids == ids))
    conn.execute(
        insert(t).values(
            server_name=server_name,
            key_ids=ids,
            response=orjson.dumps(response).decode(),
            received_ts=received_ts,
        )
    )


class DbKeyStore:
    def __init__(self, db: Any) -> None:
        self.db = db

    async def load_server_keys(self, server_name: str) -> list[tuple[dict, int]]:
        return await self.db.run(_load, server_name)

    async def save_server_keys(self, server_name: str, response: dict, received_at_ms: int) -> None:
        await self.db.run(_save, server_name, response, received_at_ms)
