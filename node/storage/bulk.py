"""Multi-row ``INSERT`` statements on the DB-API cursor, for the hot write paths.

``cursor.executemany`` runs one statement per row; SQLite's Python driver releases and
re-takes the GIL around every one of them.  While the reactor thread is busy (inbound
federation traffic), each re-take can wait for it, so a 50-event write spent more time
waiting for the GIL than in SQLite.  ``insert_rows`` writes the rows with a few
``INSERT ... VALUES (...), (...), ...`` statements instead: the batch is split into chunks
whose sizes are powers of two (50 rows = 32 + 16 + 2), so each table needs at most a
handful of distinct statements in the driver's statement cache, and no statement binds
more than ``MAX_PARAMS`` parameters (SQLite before 3.32 allows 999).

The SQL is built from trusted table and column names only; values are always bound.
"""

from __future__ import annotations

from typing import Any, Sequence

MAX_PARAMS = 999

_SQL: dict[tuple, str] = {}


def placeholder(conn: Any) -> str:
    """The DB-API placeholder of ``conn``'s driver (SQLite ``?``, psycopg ``%s``)."""
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"paramstyle {style}")  # pragma: no cover


def _statement(
    conn: Any, table: str, columns: Sequence[str], n: int, ignore_conflicts: bool
) -> str:
    dialect = conn.dialect.name
    key = (dialect, table, tuple(columns), n, ignore_conflicts)
    sql = _SQL.get(key)
    if sql is None:
        ph = placeholder(conn)
        row = "(" + ", ".join([ph] * len(columns)) + ")"
        verb = "INSERT OR IGNORE" if ignore_conflicts and dialect == "sqlite" else "INSERT"
        sql = f"{verb} INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([row] * n)
        if ignore_conflicts and dialect != "sqlite":
            sql += " ON CONFLICT DO NOTHING"
        _SQL[key] = sql
    return sql


def chunk_sizes(total: int, width: int) -> list[int]:
    """How ``insert_rows`` splits ``total`` rows of ``width`` columns: powers of two, the
    largest first, none binding more than ``MAX_PARAMS`` parameters."""
    largest = 1
    while largest * 2 * width <= MAX_PARAMS:
        largest *= 2
    sizes = []
    while total > 0:
        size = largest
        while size > total:
            size //= 2
        sizes.append(size)
        total -= size
    return sizes


def insert_rows(
    conn: Any,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` in the current
    transaction.  ``ignore_conflicts``: skip rows that violate a unique constraint."""
    if not rows:
        return
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        start = 0
        for size in chunk_sizes(len(rows), len(columns)):
            params = [value for row in rows[start : start + size] for value in row]
            cursor.execute(_statement(conn, table, columns, size, ignore_conflicts), params)
            start += size
    finally:
        cursor.close()
