"""OpenID tokens, reports, asynchronous media uploads (schema/client_misc.py)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openid_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("expires_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_openid_tokens")),
    )
    with op.batch_alter_table("openid_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_openid_tokens_expires", ["expires_ts"], unique=False)

    op.create_table(
        "content_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reporter", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("target_user_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_reports")),
    )
    with op.batch_alter_table("content_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_content_reports_reporter", ["reporter", "received_ts"], unique=False
        )

    op.create_table(
        "client_misc_rooms",
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_client_misc_rooms")),
    )

    op.create_table(
        "media_pending",
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("expires_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_media_pending")),
    )
    with op.batch_alter_table("media_pending", schema=None) as batch_op:
        batch_op.create_index("ix_media_pending_expires", ["expires_ts"], unique=False)
        batch_op.create_index("ix_media_pending_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_media_pending_user")
        batch_op.drop_index("ix_media_pending_expires")
    op.drop_table("media_pending")
    op.drop_table("client_misc_rooms")
    with op.batch_alter_table("content_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_content_reports_reporter")
    op.drop_table("content_reports")
    with op.batch_alter_table("openid_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_openid_tokens_expires")
    op.drop_table("openid_tokens")
