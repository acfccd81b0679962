"""full-text search index of room events (schema/search.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa  # noqa: F401  (used once the tables are added)
from alembic import op  # noqa: F401  (used once the tables are added)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
