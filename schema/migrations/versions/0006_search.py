"""full-text search index of room events (schema/search.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_search",
        sa.Column(
            "stream_ordering",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("stream_ordering", name=op.f("pk_event_search")),
    )
    op.create_table(
        "event_search_backfill",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("below", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_search_backfill")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Not on schema.metadata (an expression index): the query in node/search/query.py
        # must use exactly this expression for PostgreSQL to use it.
        op.execute(
            "CREATE INDEX ix_event_search_tsv ON event_search "
            "USING gin (to_tsvector('simple'::regconfig, value))"
        )
    # Everything already stored is indexed in the background at start, newest first
    # (node/search/backfill.py); the SQLite FTS5 table is created by the node too.
    op.execute(
        "INSERT INTO event_search_backfill (id, below) "
        "SELECT 1, COALESCE(MAX(stream_ordering), 0) + 1 FROM events"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS event_search_fts")
    op.drop_table("event_search_backfill")
    op.drop_table("event_search")
