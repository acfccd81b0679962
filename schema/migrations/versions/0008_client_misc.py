"""OpenID tokens, reports, asynchronous media uploads (schema/client_misc.py)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa  # noqa: F401  (used once the tables are added)
from alembic import op  # noqa: F401  (used once the tables are added)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
