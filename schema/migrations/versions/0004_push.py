"""push rules, notifications and pushers (schema/push.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa  # noqa: F401  (used once the tables are added)
from alembic import op  # noqa: F401  (used once the tables are added)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
