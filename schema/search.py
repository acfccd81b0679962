"""Full-text search index of room events (client-server API "Server Side Search",
https://spec.matrix.org/v1.16/client-server-api/#server-side-search).

Owned by the search area (``node/search``).  One row per searchable value of an accepted,
unredacted event: ``content.body`` of ``m.room.message``, ``content.name`` of
``m.room.name`` and ``content.topic`` of ``m.room.topic``.  The key is the event's stream
ordering, so "most recent first" is an index order and the row doubles as the content of
the SQLite FTS5 index (``event_search_fts``, an external-content table the node creates
and keeps in step: ``node/search/index.py``).  PostgreSQL searches an expression GIN index
on ``to_tsvector('simple', value)`` created by the migration.
"""

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from .meta import metadata

event_search = Table(
    "event_search",
    metadata,
    Column("stream_ordering", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(255), nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("sender", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("key", String(32), nullable=False),  # content.body | content.name | content.topic
    Column("value", Text, nullable=False),
)
# No secondary indexes: searches reach rows through the full-text index and the primary
# key, redactions find their target's stream ordering in ``events`` -- each index would
# cost every message a B-tree insert on the send path.

# Events stored before the index existed are indexed in the background at start
# (``node/search/backfill.py``), newest first: the one row says which stream orderings
# are still to do (those below ``below``); it is deleted when the walk is done.
event_search_backfill = Table(
    "event_search_backfill",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("below", BigInteger, nullable=False),
)
