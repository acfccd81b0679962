"""end-to-end encryption keys, to-device messages, key backup (schema/e2ee.py)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_STREAM_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "e2ee_device_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("key_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", name=op.f("pk_e2ee_device_keys")),
    )
    op.create_table(
        "e2ee_one_time_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("key_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id", "device_id", "algorithm", "key_id", name=op.f("pk_e2ee_one_time_keys")
        ),
    )
    op.create_table(
        "e2ee_fallback_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("key_json", sa.Text(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id", "device_id", "algorithm", name=op.f("pk_e2ee_fallback_keys")
        ),
    )
    op.create_table(
        "e2ee_cross_signing_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("key_type", sa.String(length=32), nullable=False),
        sa.Column("key_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key_type", name=op.f("pk_e2ee_cross_signing_keys")),
    )
    op.create_table(
        "e2ee_signatures",
        sa.Column("signer_user_id", sa.String(length=255), nullable=False),
        sa.Column("target_user_id", sa.String(length=255), nullable=False),
        sa.Column("target_key_id", sa.String(length=255), nullable=False),
        sa.Column("signer_key_id", sa.String(length=255), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "signer_user_id",
            "target_user_id",
            "target_key_id",
            "signer_key_id",
            name=op.f("pk_e2ee_signatures"),
        ),
    )
    with op.batch_alter_table("e2ee_signatures", schema=None) as batch_op:
        batch_op.create_index("ix_e2ee_signatures_target", ["target_user_id"], unique=False)
    op.create_table(
        "e2ee_device_list_stream",
        sa.Column("stream_id", _STREAM_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=True),
        sa.Column("membership", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_e2ee_device_list_stream")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("e2ee_device_list_stream", schema=None) as batch_op:
        batch_op.create_index("ix_e2ee_device_list_user", ["user_id"], unique=False)
    op.create_table(
        "e2ee_to_device",
        sa.Column("stream_id", _STREAM_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("message_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_e2ee_to_device")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("e2ee_to_device", schema=None) as batch_op:
        batch_op.create_index(
            "ix_e2ee_to_device_device", ["user_id", "device_id", "stream_id"], unique=False
        )
    op.create_table(
        "e2ee_to_device_txns",
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("txn_id", sa.String(length=255), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "sender", "device_id", "txn_id", name=op.f("pk_e2ee_to_device_txns")
        ),
    )
    with op.batch_alter_table("e2ee_to_device_txns", schema=None) as batch_op:
        batch_op.create_index("ix_e2ee_to_device_txns_ts", ["ts"], unique=False)
    op.create_table(
        "e2ee_backup_versions",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("algorithm", sa.String(length=255), nullable=False),
        sa.Column("auth_data", sa.Text(), nullable=False),
        sa.Column("etag", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "version", name=op.f("pk_e2ee_backup_versions")),
    )
    op.create_table(
        "e2ee_backup_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("first_message_index", sa.BigInteger(), nullable=False),
        sa.Column("forwarded_count", sa.BigInteger(), nullable=False),
        sa.Column("is_verified", sa.Boolean(), nullable=False),
        sa.Column("session_data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "user_id", "version", "room_id", "session_id", name=op.f("pk_e2ee_backup_keys")
        ),
    )


def downgrade() -> None:
    op.drop_table("e2ee_backup_keys")
    op.drop_table("e2ee_backup_versions")
    with op.batch_alter_table("e2ee_to_device_txns", schema=None) as batch_op:
        batch_op.drop_index("ix_e2ee_to_device_txns_ts")
    op.drop_table("e2ee_to_device_txns")
    with op.batch_alter_table("e2ee_to_device", schema=None) as batch_op:
        batch_op.drop_index("ix_e2ee_to_device_device")
    op.drop_table("e2ee_to_device")
    with op.batch_alter_table("e2ee_device_list_stream", schema=None) as batch_op:
        batch_op.drop_index("ix_e2ee_device_list_user")
    op.drop_table("e2ee_device_list_stream")
    with op.batch_alter_table("e2ee_signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_e2ee_signatures_target")
    op.drop_table("e2ee_signatures")
    op.drop_table("e2ee_cross_signing_keys")
    op.drop_table("e2ee_fallback_keys")
    op.drop_table("e2ee_one_time_keys")
    op.drop_table("e2ee_device_keys")
