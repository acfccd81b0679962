"""End-to-end encryption tables (client-server API "End-to-End Encryption", "Send-to-Device
messaging", "Server-side key backups"; owned by ``node/e2ee``).

The server never sees a message key: it stores what clients publish (device identity keys,
one-time and fallback keys, cross-signing keys and signatures), queues to-device messages
until the recipient device acknowledges them, and keeps encrypted key backups.  Two tables
are *streams* with a monotonic ``stream_id`` (``AUTOINCREMENT`` on SQLite, never reused):
to-device messages and device-list changes, read by ``/sync`` past the token's position.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from .meta import metadata

_StreamId = BigInteger().with_variant(Integer, "sqlite")

# "Uploading keys": the signed ``device_keys`` object of a device, as uploaded (JSON text).
e2ee_device_keys = Table(
    "e2ee_device_keys",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("key_json", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "device_id"),
)

# One-time keys: each is handed out once by /keys/claim and deleted in the same transaction.
e2ee_one_time_keys = Table(
    "e2ee_one_time_keys",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("algorithm", String(64), nullable=False),
    Column("key_id", String(255), nullable=False),
    Column("key_json", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "device_id", "algorithm", "key_id"),
)

# Fallback keys: one per (device, algorithm); ``used`` once it was claimed (it stays claimable).
e2ee_fallback_keys = Table(
    "e2ee_fallback_keys",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("algorithm", String(64), nullable=False),
    Column("key_id", String(255), nullable=False),
    Column("key_json", Text, nullable=False),
    Column("used", Boolean, nullable=False),
    PrimaryKeyConstraint("user_id", "device_id", "algorithm"),
)

# "Cross-signing": a user's master / self_signing / user_signing key (JSON text).
e2ee_cross_signing_keys = Table(
    "e2ee_cross_signing_keys",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("key_type", String(32), nullable=False),
    Column("key_json", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "key_type"),
)

# Signatures uploaded with /keys/signatures/upload: ``signer_user_id``'s key
# ``signer_key_id`` signed ``target_user_id``'s key ``target_key_id`` (a device ID, or the
# unpadded base64 public key of a cross-signing key).
e2ee_signatures = Table(
    "e2ee_signatures",
    metadata,
    Column("signer_user_id", String(255), nullable=False),
    Column("target_user_id", String(255), nullable=False),
    Column("target_key_id", String(255), nullable=False),
    Column("signer_key_id", String(255), nullable=False),
    Column("signature", Text, nullable=False),
    PrimaryKeyConstraint("signer_user_id", "target_user_id", "target_key_id", "signer_key_id"),
)
Index("ix_e2ee_signatures_target", e2ee_signatures.c.target_user_id)

# Device-list stream: a user's devices or keys changed (``room_id`` NULL), or they joined
# (``membership`` "join") or left a room (anything else).  Read by /sync and /keys/changes.
e2ee_device_list_stream = Table(
    "e2ee_device_list_stream",
    metadata,
    Column("stream_id", _StreamId, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("room_id", String(255), nullable=True),
    Column("membership", String(32), nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_e2ee_device_list_user", e2ee_device_list_stream.c.user_id)

# To-device messages waiting for their device (deleted once the device's next /sync
# acknowledges them); ``message_json`` is the event as delivered.
e2ee_to_device = Table(
    "e2ee_to_device",
    metadata,
    Column("stream_id", _StreamId, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("message_json", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index(
    "ix_e2ee_to_device_device",
    e2ee_to_device.c.user_id,
    e2ee_to_device.c.device_id,
    e2ee_to_device.c.stream_id,
)

# Transaction IDs already handled: a client's sendToDevice (sender, device, txnId), or a
# remote server's m.direct_to_device EDU (origin server, "", message_id).
e2ee_to_device_txns = Table(
    "e2ee_to_device_txns",
    metadata,
    Column("sender", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("txn_id", String(255), nullable=False),
    Column("ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("sender", "device_id", "txn_id"),
)
Index("ix_e2ee_to_device_txns_ts", e2ee_to_device_txns.c.ts)

# "Server-side key backups": versions (``deleted`` ones keep their number, never reused)...
e2ee_backup_versions = Table(
    "e2ee_backup_versions",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("algorithm", String(255), nullable=False),
    Column("auth_data", Text, nullable=False),
    Column("etag", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    PrimaryKeyConstraint("user_id", "version"),
)

# ... and the backed-up sessions of each version.
e2ee_backup_keys = Table(
    "e2ee_backup_keys",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("session_id", String(255), nullable=False),
    Column("first_message_index", BigInteger, nullable=False),
    Column("forwarded_count", BigInteger, nullable=False),
    Column("is_verified", Boolean, nullable=False),
    Column("session_data", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "version", "room_id", "session_id"),
)
