"""Per-user sync data (client-server API "Filtering", "Receipts", "Client Config" / account data).

Owned by the sync area (``node/sync``).  Receipts and account data are *streams*: every write gets a
new ``stream_id`` (monotonic, never reused: SQLite tables use ``AUTOINCREMENT``), so an incremental
``/sync`` asks for "rows with ``stream_id`` greater than the token's part".  Each table keeps only
the latest row per key (the old row is deleted when a new one is written).
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .meta import metadata

_StreamId = BigInteger().with_variant(Integer, "sqlite")

# "Filtering": POST /user/{userId}/filter stores a filter; the ID is a per-user counter.
user_filters = Table(
    "user_filters",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("filter_id", BigInteger, nullable=False),
    Column("filter_json", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "filter_id"),
)

# "Receipts": the latest receipt per (room, receipt type, user, thread).  ``thread_id`` is ""
# for an unthreaded receipt, "main" or a thread root's event ID otherwise.  ``event_stream`` is
# the stream ordering of the acknowledged event (for unread counts), NULL if unknown.
receipts = Table(
    "receipts",
    metadata,
    Column("stream_id", _StreamId, primary_key=True, autoincrement=True),
    Column("room_id", String(255), nullable=False),
    Column("receipt_type", String(64), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("thread_id", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("event_stream", BigInteger, nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # JSON of extra receipt fields
    UniqueConstraint("room_id", "receipt_type", "user_id", "thread_id", name="uq_receipts_key"),
    sqlite_autoincrement=True,
)
Index("ix_receipts_room_stream", receipts.c.room_id, receipts.c.stream_id)

# "Client Config": global (room_id "") and per-room account data, latest value per type.
account_data = Table(
    "account_data",
    metadata,
    Column("stream_id", _StreamId, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("content", Text, nullable=False),
    UniqueConstraint("user_id", "room_id", "type", name="uq_account_data_key"),
    sqlite_autoincrement=True,
)
Index("ix_account_data_user_stream", account_data.c.user_id, account_data.c.stream_id)
