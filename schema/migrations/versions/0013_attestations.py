"""role attestations of staff: no tables (they are signed on demand and held in memory;
the gateway's staff list refills at its first gathering), kept so the revision chain is whole

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 22:00:00
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
