"""A school's people, imported from its information system (OneRoster 1.2 CSV bulk files).

The tables are the node's record of who is who at the school, keyed by the OneRoster
``sourcedId`` of each person, org and class, so a re-import finds what it made before.  They
are shaped for the questions later role policies ask: is X a teacher of pupil Y's class
(``people_enrollments`` by class and role), is P a parent of child C
(``people_guardians``), which classes is C in (``people_enrollments`` by person).
Claim codes are stored as SHA-256 digests only; the code itself is printed once.
"""

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table

from .meta import metadata

people_persons = Table(
    "people_persons",
    metadata,
    Column("sourced_id", String(255), primary_key=True),
    Column("user_id", String(255), nullable=False, unique=True),
    Column("role", String(32), nullable=False),  # the node's role: pupil, teacher, parent...
    Column("given_name", String(255), nullable=False),
    Column("family_name", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # active | inactive
)

people_orgs = Table(
    "people_orgs",
    metadata,
    Column("sourced_id", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("org_type", String(32), nullable=False),
)

people_classes = Table(
    "people_classes",
    metadata,
    Column("sourced_id", String(255), primary_key=True),
    Column("title", String(255), nullable=False),
    Column("org_sourced_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # active | inactive
    Column("class_room_id", String(255), nullable=True),  # set once the node made the room
    Column("parents_room_id", String(255), nullable=True),
)

people_enrollments = Table(
    "people_enrollments",
    metadata,
    Column("class_sourced_id", String(255), nullable=False),
    Column("person_sourced_id", String(255), nullable=False),
    Column("role", String(32), nullable=False),  # OneRoster: student, teacher, aide...
    PrimaryKeyConstraint("class_sourced_id", "person_sourced_id"),
)
Index("ix_people_enrollments_person", people_enrollments.c.person_sourced_id)

people_guardians = Table(
    "people_guardians",
    metadata,
    Column("parent_sourced_id", String(255), nullable=False),
    Column("child_sourced_id", String(255), nullable=False),
    PrimaryKeyConstraint("parent_sourced_id", "child_sourced_id"),
)
Index("ix_people_guardians_child", people_guardians.c.child_sourced_id)

# The school-wide rooms (space, staff, announcements) by kind, and the import generation
# (kind "generation", room_id holding the number) the node's room sync watches.
people_school_rooms = Table(
    "people_school_rooms",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("room_id", String(255), nullable=False),
)

people_claim_codes = Table(
    "people_claim_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),  # sha256 hex of the code
    Column("user_id", String(255), nullable=False, unique=True),  # one live code per person
    Column("created_ts", BigInteger, nullable=False),
)
