"""Refresh tokens (client-server API "Refreshing access tokens").

``refresh_tokens``: one row per refresh token, stored as the SHA-256 hex digest of the
token (never the token), bound to the user's device and to the access token issued with
it (``access_token_hash``, with that access token's expiry).  ``next_id`` is the row
that replaced it on ``POST /refresh``: the old row stays usable until the new access or
refresh token is used (the spec's rule for clients that miss the answer), then goes.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from .meta import metadata

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("access_token_hash", String(64), nullable=False),
    Column("access_expires_ts", BigInteger, nullable=False),  # ms since the epoch
    Column("next_id", BigInteger, nullable=True),
    Column("created_ts", BigInteger, nullable=False),
)
Index("ix_refresh_tokens_access", refresh_tokens.c.access_token_hash)
Index("ix_refresh_tokens_next", refresh_tokens.c.next_id)
Index("ix_refresh_tokens_device", refresh_tokens.c.user_id, refresh_tokens.c.device_id)
