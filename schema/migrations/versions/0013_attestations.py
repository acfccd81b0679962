"""role attestations of staff (schema/attestations.py)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 22:00:00
"""

import sqlalchemy as sa  # noqa: F401  (used once the tables are added)
from alembic import op  # noqa: F401  (used once the tables are added)

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
