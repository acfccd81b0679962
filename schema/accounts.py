"""Accounts tables: users, devices, access tokens, registration tokens.

Client-server API sections "Account registration and management", "Login", "Device
management", "Profiles" and "Token-authenticated registration".  Access tokens are stored as
the SHA-256 hex digest of the token, never the token itself; passwords as argon2 hashes.
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

users = Table(
    "users",
    metadata,
    Column("user_id", String(255), primary_key=True),  # full MXID
    Column("localpart", String(255), nullable=False, unique=True),
    Column("role", String(32), nullable=False),  # director, teacher, pupil, ...
    Column("displayname", String(512), nullable=True),
    Column("avatar_url", String(512), nullable=True),
    Column("profile_fields", Text, nullable=True),  # JSON: m.tz and custom fields
    Column("password_hash", String(255), nullable=True),  # argon2 PHC string
    Column("created_ts", BigInteger, nullable=False),
    Column("deactivated", Boolean, nullable=False, default=False),
)

devices = Table(
    "devices",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("display_name", String(512), nullable=True),
    Column("last_seen_ip", String(64), nullable=True),
    Column("last_seen_ts", BigInteger, nullable=True),
    Column("created_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "device_id"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the token
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
)
Index("ix_access_tokens_user_device", access_tokens.c.user_id, access_tokens.c.device_id)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("uses_allowed", Integer, nullable=True),  # NULL: unlimited
    Column("pending", Integer, nullable=False, default=0),
    Column("completed", Integer, nullable=False, default=0),
    Column("expiry_time", BigInteger, nullable=True),  # ms since epoch; NULL: never
    Column("role", String(32), nullable=False),  # role given to accounts it registers
    Column("created_ts", BigInteger, nullable=False),
)
