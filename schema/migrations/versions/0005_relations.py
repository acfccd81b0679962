"""event relations: threads, edits, references (schema/relations.py)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 21:15:00

Events persisted before this revision have no relation rows: their children are not
aggregated nor listed by /relations and /threads (new events are).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_relations",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("relates_to_id", sa.String(length=255), nullable=False),
        sa.Column("rel_type", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("origin_server_ts", sa.BigInteger(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.Column("replace_ok", sa.Boolean(), nullable=False),
        sa.Column("aggregation_key", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_relations")),
    )
    with op.batch_alter_table("event_relations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_relations_parent",
            ["relates_to_id", "rel_type", "stream_ordering"],
            unique=False,
        )
    op.create_table(
        "event_threads",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("latest_stream_ordering", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "thread_id", name=op.f("pk_event_threads")),
    )
    with op.batch_alter_table("event_threads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_threads_latest", ["room_id", "latest_stream_ordering"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("event_threads", schema=None) as batch_op:
        batch_op.drop_index("ix_event_threads_latest")
    op.drop_table("event_threads")
    with op.batch_alter_table("event_relations", schema=None) as batch_op:
        batch_op.drop_index("ix_event_relations_parent")
    op.drop_table("event_relations")
