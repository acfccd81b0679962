"""third-party identifiers and validation sessions, account locks (schema/threepid.py)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_threepids",
        sa.Column("medium", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("validated_at", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("medium", "address"),
    )
    op.create_index("ix_user_threepids_user", "user_threepids", ["user_id"])
    op.create_table(
        "threepid_validation_sessions",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("medium", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("client_secret", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("send_attempt", sa.BigInteger(), nullable=False),
        sa.Column("next_link", sa.Text(), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("usable", sa.Boolean(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("expires_ts", sa.BigInteger(), nullable=False),
        sa.Column("validated_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index(
        "ix_threepid_sessions_secret",
        "threepid_validation_sessions",
        ["client_secret", "address"],
    )
    op.create_index("ix_threepid_sessions_expires", "threepid_validation_sessions", ["expires_ts"])
    op.create_table(
        "account_restrictions",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("account_restrictions")
    op.drop_index("ix_threepid_sessions_expires", table_name="threepid_validation_sessions")
    op.drop_index("ix_threepid_sessions_secret", table_name="threepid_validation_sessions")
    op.drop_table("threepid_validation_sessions")
    op.drop_index("ix_user_threepids_user", table_name="user_threepids")
    op.drop_table("user_threepids")
