"""refresh tokens (schema/refresh_tokens.py), presence status messages (schema/presence.py)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence_status",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("status_msg", sa.Text(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_presence_status")),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=False),
        sa.Column("access_expires_ts", sa.BigInteger(), nullable=False),
        sa.Column("next_id", sa.BigInteger(), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_refresh_tokens_access", ["access_token_hash"], unique=False)
        batch_op.create_index("ix_refresh_tokens_next", ["next_id"], unique=False)
        batch_op.create_index("ix_refresh_tokens_device", ["user_id", "device_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_refresh_tokens_device")
        batch_op.drop_index("ix_refresh_tokens_next")
        batch_op.drop_index("ix_refresh_tokens_access")
    op.drop_table("refresh_tokens")
    op.drop_table("presence_status")
