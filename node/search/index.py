"""Keeping the search index in step with the events table.

What is searchable (client-server API "Server Side Search" > ``room_events``,
https://spec.matrix.org/v1.16/client-server-api/#room_events): ``content.body`` of
``m.room.message``, ``content.name`` of ``m.room.name`` and, for ``m.room.topic``,
``content.topic`` as well as the ``text/plain`` body in ``content["m.topic"]``.  Hidden
events (outliers, soft-failed, rejected) are never indexed; redacted events leave the
index in the transaction that stores their redaction.

``write_index`` runs inside every persister batch's transaction
(``EventPersister.in_transaction``), so an event and its index row commit together and
a message costs one multi-row ``INSERT`` per batch (two on SQLite: the row and its FTS5
entry), not a round trip of its own.  Events of other types cost one dict lookup.

On SQLite the words live in ``event_search_fts``, an FTS5 table whose content is
``event_search`` (``content_rowid`` = stream ordering).  It is not on ``schema.metadata``
(Alembic cannot describe a virtual table and its shadow tables), so the node creates it
at start (``ensure_fts``) and fills it from ``event_search`` when it is missing.  An
external-content FTS5 table must be told the old text of a row it forgets, which is why
``unindex`` reads the row before deleting it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from federation.events.model import Event
from node.rooms.event_meta import committed_stream, meta
from node.rooms.persister import is_hidden
from node.startup import StartupError
from node.storage.bulk import insert_rows, placeholder

log = logging.getLogger("parta.search")

FTS_TABLE = "event_search_fts"
COLUMNS = ("stream_ordering", "event_id", "room_id", "sender", "type", "key", "value")
# Event type -> (the key clients name in ``keys``, whether it is a state event).
SEARCHED: dict[str, tuple[str, bool]] = {
    "m.room.message": ("content.body", False),
    "m.room.name": ("content.name", True),
    "m.room.topic": ("content.topic", True),
}
KEY_TYPES = {key: etype for etype, (key, _) in SEARCHED.items()}


def searchable_value(etype: str, content: Mapping[str, Any], state_key: str | None) -> str | None:
    """The text to index for an event of ``etype``, or None (not searchable)."""
    spec = SEARCHED.get(etype)
    if spec is None or spec[1] != (state_key is not None) or (spec[1] and state_key != ""):
        return None
    if etype == "m.room.message":
        value = content.get("body")
    elif etype == "m.room.name":
        value = content.get("name")
    else:
        value = content.get("topic")
        parts = [value] if isinstance(value, str) else []
        rich = content.get("m.topic")
        if isinstance(rich, Mapping):
            reps = rich.get("m.text")
            if isinstance(reps, list):
                for rep in reps:
                    if (
                        isinstance(rep, Mapping)
                        and rep.get("mimetype", "text/plain") == "text/plain"
                        and isinstance(rep.get("body"), str)
                        and rep["body"] not in parts
                    ):
                        parts.append(rep["body"])
                        break
        value = "\n".join(parts) if parts else None
    if not isinstance(value, str) or not value:
        return None
    # PostgreSQL text cannot hold NUL (an escaped \u0000 in the event's JSON is legal).
    return value.replace("\x00", " ") if "\x00" in value else value


def event_row(ev: Event) -> tuple | None:
    """The ``event_search`` row of a just-committed event, or None."""
    if ev.type not in SEARCHED or is_hidden(ev):
        return None
    value = searchable_value(ev.type, ev.content, ev.state_key)
    if value is None:
        return None
    key = SEARCHED[ev.type][0]
    return (committed_stream(ev), ev.event_id, ev.room_id, ev.sender, ev.type, key, value)


def insert_index_rows(conn: Connection, rows: Sequence[tuple]) -> None:
    insert_rows(conn, "event_search", COLUMNS, rows)
    if conn.dialect.name == "sqlite":
        insert_rows(conn, FTS_TABLE, ("rowid", "value"), [(r[0], r[6]) for r in rows])


def write_index(conn: Connection, evs: Sequence[Event]) -> None:
    """Index the batch's searchable events and drop its redactions' targets (runs in the
    persister's transaction, after the event rows)."""
    rows = []
    redacted: list[tuple[str, str]] = []
    for ev in evs:
        if ev.type in SEARCHED:
            row = event_row(ev)
            if row is not None:
                rows.append(row)
        target = meta(ev).redacts_target
        if target is not None:
            redacted.append((target, ev.room_id))
    if rows:
        insert_index_rows(conn, rows)
    if redacted:
        unindex(conn, redacted)


def unindex(conn: Connection, targets: Sequence[tuple[str, str]]) -> None:
    """Remove redacted events (event ID, room ID) from the index: their stream ordering
    comes from ``events`` (unique on event ID), the index is keyed by it."""
    ph = placeholder(conn)
    sqlite = conn.dialect.name == "sqlite"
    dbapi: Any = conn.connection.dbapi_connection  # open, so never None
    cursor = dbapi.cursor()
    try:
        for event_id, room_id in targets:
            cursor.execute(
                f"SELECT s.stream_ordering, s.value FROM events e JOIN event_search s "
                f"ON s.stream_ordering = e.stream_ordering "
                f"WHERE e.event_id = {ph} AND e.room_id = {ph}",
                (event_id, room_id),
            )
            for stream, value in cursor.fetchall():
                if sqlite:
                    cursor.execute(
                        f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, value) "
                        f"VALUES ('delete', {ph}, {ph})",
                        (stream, value),
                    )
                cursor.execute(f"DELETE FROM event_search WHERE stream_ordering = {ph}", (stream,))
    finally:
        cursor.close()


def ensure_fts(conn: Connection) -> None:
    """Create the SQLite FTS5 table when it is missing and fill it from ``event_search``
    (blocking; at start).  Nothing to do on PostgreSQL (the migration made its index)."""
    if conn.dialect.name != "sqlite":
        return
    found = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": FTS_TABLE}
    ).first()
    if found is not None:
        return
    try:
        conn.execute(
            text(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(value, content='event_search', "
                "content_rowid='stream_ordering', tokenize='unicode61 remove_diacritics 2')"
            )
        )
    except Exception as exc:  # noqa: BLE001 - an SQLite built without FTS5: one clear line
        raise StartupError(f"SQLite lacks the FTS5 extension needed for search: {exc}") from None
    conn.execute(text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')"))
    log.info("event=search_fts_created")
