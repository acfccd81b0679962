"""push rules, notifications and pushers (schema/push.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "push_rulesets",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_push_rulesets")),
    )
    op.create_table(
        "push_notifications",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("highlight", sa.Boolean(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_notifications")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("push_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_push_notifications_user_room",
            ["user_id", "room_id", "stream_ordering"],
            unique=False,
        )
        batch_op.create_index(
            "ix_push_notifications_user_stream", ["user_id", "stream_ordering"], unique=False
        )
    op.create_table(
        "pushers",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("pushkey", sa.String(length=512), nullable=False),
        sa.Column("pushkey_ts", sa.BigInteger(), nullable=False),
        sa.Column("app_display_name", sa.String(length=255), nullable=False),
        sa.Column("device_display_name", sa.String(length=255), nullable=False),
        sa.Column("profile_tag", sa.String(length=255), nullable=True),
        sa.Column("lang", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushers")),
        sa.UniqueConstraint("user_id", "app_id", "pushkey", name="uq_pushers_key"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("pushers", schema=None) as batch_op:
        batch_op.create_index("ix_pushers_app_pushkey", ["app_id", "pushkey"], unique=False)
    op.create_table(
        "push_queue",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("pusher_id", sa.BigInteger(), nullable=False),
        sa.Column("notification", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_queue")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("push_queue", schema=None) as batch_op:
        batch_op.create_index("ix_push_queue_next", ["next_ts"], unique=False)
        batch_op.create_index("ix_push_queue_pusher", ["pusher_id"], unique=False)


def downgrade() -> None:
    op.drop_table("push_queue")
    op.drop_table("pushers")
    op.drop_table("push_notifications")
    op.drop_table("push_rulesets")
