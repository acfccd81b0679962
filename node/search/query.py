"""The full-text query on each backend, limited to a ``Scope``.

SQLite: the FTS5 table ``event_search_fts`` (``MATCH``; ``bm25`` for rank, lower is
better, so it is negated for the spec's "higher is closer"); results newest first follow
the FTS rowid (= stream ordering) descending, which FTS5 produces without sorting.
PostgreSQL: the expression GIN index on ``to_tsvector('simple', value)`` created by the
migration (the expression below must stay identical to it), ``ts_rank`` for rank.

Every value from the request is a bound parameter; the match expression itself is built
by ``node.search.terms`` from letters and digits only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .index import FTS_TABLE
from .scope import Scope
from .terms import fts5_query, tsquery

COUNT_CAP = 1000  # counts stop here ("an approximate count", spec)
RANK_WINDOW = 1000  # rank order ranks this many most recent hits (>= COUNT_CAP)
TSV = "to_tsvector('simple'::regconfig, s.value)"


@dataclass(frozen=True)
class Query:
    words: list[str]
    scope: Scope
    types: Sequence[str]  # searchable event types (already narrowed by keys and filter)
    senders: Sequence[str] | None = None
    not_senders: Sequence[str] = ()


@dataclass(frozen=True)
class Hit:
    stream: int
    event_id: str
    room_id: str
    sender: str
    rank: float


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return ":" + name

    def many(self, values: Sequence[object]) -> str:
        return ", ".join(self.add(v) for v in values)


def _where(q: Query, params: _Params, sqlite: bool) -> str:
    if sqlite:
        match = f"{FTS_TABLE} MATCH {params.add(fts5_query(q.words))}"
    else:
        match = f"{TSV} @@ to_tsquery('simple'::regconfig, {params.add(tsquery(q.words))})"
    scope: list[str] = []
    if q.scope.whole_rooms:
        scope.append(f"s.room_id IN ({params.many(q.scope.whole_rooms)})")
    for room_id, low, high in q.scope.ranges:
        part = [f"s.room_id = {params.add(room_id)}"]
        if low is not None:
            part.append(f"s.stream_ordering > {params.add(low)}")
        if high is not None:
            part.append(f"s.stream_ordering < {params.add(high)}")
        scope.append("(" + " AND ".join(part) + ")")
    clauses = [match, "(" + " OR ".join(scope) + ")", f"s.type IN ({params.many(q.types)})"]
    if q.senders is not None:
        clauses.append(f"s.sender IN ({params.many(q.senders)})")
    if q.not_senders:
        clauses.append(f"s.sender NOT IN ({params.many(q.not_senders)})")
    return " AND ".join(clauses)


def _from(sqlite: bool) -> str:
    if sqlite:
        return f"{FTS_TABLE} JOIN event_search s ON s.stream_ordering = {FTS_TABLE}.rowid"
    return "event_search s"


def _rowid(sqlite: bool) -> str:
    return f"{FTS_TABLE}.rowid" if sqlite else "s.stream_ordering"


def rank_floor(conn: Connection, q: Query, ceiling: int) -> int | None:
    """The stream ordering of the ``RANK_WINDOW``-th most recent hit at or below
    ``ceiling``, or None when there are fewer hits (then all of them are ranked)."""
    sqlite = conn.dialect.name == "sqlite"
    params = _Params()
    where = _where(q, params, sqlite)
    sql = (
        f"SELECT {_rowid(sqlite)} FROM {_from(sqlite)} WHERE {where} "
        f"AND {_rowid(sqlite)} <= {params.add(ceiling)} "
        f"ORDER BY {_rowid(sqlite)} DESC LIMIT 1 OFFSET {RANK_WINDOW - 1}"
    )
    found = conn.execute(text(sql), params.values).scalar()
    return int(found) if found is not None else None


def search(
    conn: Connection,
    q: Query,
    *,
    order: str,
    at: int | None,
    limit: int,
    window: tuple[int | None, int] | None = None,
) -> tuple[list[Hit], int, tuple[int | None, int] | None]:
    """Up to ``limit`` hits from ``at`` (recent: below this stream ordering; rank: rows
    to skip), the count of all hits (at most ``COUNT_CAP``) and, for rank order, the
    window of stream orderings ranked.

    Ranking scores every hit it orders, so a word found in most messages would cost time
    in proportion to the whole history.  Rank order therefore ranks the ``RANK_WINDOW``
    most recent hits: ``window`` = (lowest, highest) stream ordering, fixed by the first
    page (``highest`` is the newest event then) and carried in ``next_batch``, so later
    pages rank the same set whatever arrives meanwhile."""
    if not q.words or q.scope.empty or not q.types or (q.senders is not None and not q.senders):
        return [], 0, window
    sqlite = conn.dialect.name == "sqlite"
    if order == "rank" and window is not None and window[0] is None and at is None:
        window = (rank_floor(conn, q, window[1]), window[1])
    params = _Params()
    where = _where(q, params, sqlite)
    if (
        order == "rank"
        and window is not None
        and window[0] is not None
        and RANK_WINDOW >= COUNT_CAP
    ):
        count = COUNT_CAP  # at least RANK_WINDOW hits: no need to count them
    else:
        count_sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM {_from(sqlite)} WHERE {where} "
            f"LIMIT {COUNT_CAP}) c"
        )
        count = int(conn.execute(text(count_sql), params.values).scalar() or 0)
    if sqlite:
        rank = f"-bm25({FTS_TABLE})"
    else:
        rank = f"ts_rank({TSV}, to_tsquery('simple'::regconfig, {params.add(tsquery(q.words))}))"
    sql = (
        f"SELECT s.stream_ordering, s.event_id, s.room_id, s.sender, {rank} AS rank "
        f"FROM {_from(sqlite)} WHERE {where}"
    )
    if order == "recent":
        if at is not None:
            sql += f" AND {_rowid(sqlite)} < {params.add(at)}"
        sql += f" ORDER BY {_rowid(sqlite)} DESC LIMIT {params.add(limit)}"
    else:
        if window is not None:
            low, high = window
            if low is not None:
                sql += f" AND {_rowid(sqlite)} >= {params.add(low)}"
            sql += f" AND {_rowid(sqlite)} <= {params.add(high)}"
        sql += (
            f" ORDER BY {FTS_TABLE}.rank, s.stream_ordering DESC"
            if sqlite
            else " ORDER BY rank DESC, s.stream_ordering DESC"
        )
        sql += f" LIMIT {params.add(limit)} OFFSET {params.add(at or 0)}"
    rows = conn.execute(text(sql), params.values).all()
    hits = [Hit(r[0], r[1], r[2], r[3], float(r[4] or 0.0)) for r in rows]
    return hits, count, window
