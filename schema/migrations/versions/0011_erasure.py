"""erased accounts (schema/erasure.py)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_users",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("erased_ts", sa.BigInteger(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("erased_users")
