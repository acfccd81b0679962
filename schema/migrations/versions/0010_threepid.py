"""third-party identifiers and validation sessions, account locks (schema/threepid.py)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa  # noqa: F401  (used once the tables are added)
from alembic import op  # noqa: F401  (used once the tables are added)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
