"""end-to-end encryption keys, to-device messages, key backup (schema/e2ee.py)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa  # noqa: F401  (used once the tables are added)
from alembic import op  # noqa: F401  (used once the tables are added)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
