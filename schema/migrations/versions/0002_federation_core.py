"""federation core: state groups, inbound transactions, remote server keys (schema/federation.py)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:06:43.081787

Events persisted before this revision have no state groups: the node falls back to the
linear history for them (``node.rooms.state_store``) and makes a snapshot group of a
room's current state the first time the room changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_state_groups",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("before_group", sa.BigInteger(), nullable=False),
        sa.Column("after_group", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_state_groups")),
    )
    op.create_table(
        "federation_inbound_txns",
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("txn_id", sa.String(length=255), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("origin", "txn_id", name=op.f("pk_federation_inbound_txns")),
    )
    with op.batch_alter_table("federation_inbound_txns", schema=None) as batch_op:
        batch_op.create_index("ix_federation_inbound_txns_ts", ["received_ts"], unique=False)

    op.create_table(
        "remote_server_keys",
        sa.Column("server_name", sa.String(length=255), nullable=False),
        sa.Column("key_ids", sa.String(length=1024), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("server_name", "key_ids", name=op.f("pk_remote_server_keys")),
    )
    op.create_table(
        "room_state_groups",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("state_group", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_room_state_groups")),
    )
    op.create_table(
        "state_group_entries",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("state_key", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint(
            "group_id", "type", "state_key", name=op.f("pk_state_group_entries")
        ),
    )
    op.create_table(
        "state_groups",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("prev_group", sa.BigInteger(), nullable=True),
        sa.Column("chain_len", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_groups")),
    )
    with op.batch_alter_table("state_groups", schema=None) as batch_op:
        batch_op.create_index("ix_state_groups_room", ["room_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("state_groups", schema=None) as batch_op:
        batch_op.drop_index("ix_state_groups_room")
    op.drop_table("state_groups")
    op.drop_table("state_group_entries")
    op.drop_table("room_state_groups")
    op.drop_table("remote_server_keys")
    with op.batch_alter_table("federation_inbound_txns", schema=None) as batch_op:
        batch_op.drop_index("ix_federation_inbound_txns_ts")
    op.drop_table("federation_inbound_txns")
    op.drop_table("event_state_groups")
