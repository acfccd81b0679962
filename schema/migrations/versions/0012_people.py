"""people, classes, enrollments, guardians and claim codes from OneRoster (schema/people.py)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people_persons",
        sa.Column("sourced_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("given_name", sa.String(255), nullable=False),
        sa.Column("family_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("sourced_id", name="pk_people_persons"),
        sa.UniqueConstraint("user_id", name="uq_people_persons_user_id"),
    )
    op.create_table(
        "people_orgs",
        sa.Column("sourced_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("org_type", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("sourced_id", name="pk_people_orgs"),
    )
    op.create_table(
        "people_classes",
        sa.Column("sourced_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("org_sourced_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("class_room_id", sa.String(255), nullable=True),
        sa.Column("parents_room_id", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("sourced_id", name="pk_people_classes"),
    )
    op.create_table(
        "people_enrollments",
        sa.Column("class_sourced_id", sa.String(255), nullable=False),
        sa.Column("person_sourced_id", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(
            "class_sourced_id", "person_sourced_id", name="pk_people_enrollments"
        ),
    )
    op.create_index("ix_people_enrollments_person", "people_enrollments", ["person_sourced_id"])
    op.create_table(
        "people_guardians",
        sa.Column("parent_sourced_id", sa.String(255), nullable=False),
        sa.Column("child_sourced_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint(
            "parent_sourced_id", "child_sourced_id", name="pk_people_guardians"
        ),
    )
    op.create_index("ix_people_guardians_child", "people_guardians", ["child_sourced_id"])
    op.create_table(
        "people_school_rooms",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("kind", name="pk_people_school_rooms"),
    )
    op.create_table(
        "people_claim_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code_hash", name="pk_people_claim_codes"),
        sa.UniqueConstraint("user_id", name="uq_people_claim_codes_user_id"),
    )


def downgrade() -> None:
    for table in (
        "people_claim_codes",
        "people_school_rooms",
        "people_guardians",
        "people_enrollments",
        "people_classes",
        "people_orgs",
        "people_persons",
    ):
        op.drop_table(table)
