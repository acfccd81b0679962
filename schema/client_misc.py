"""Small client-server API stores: OpenID tokens, content reports, the moderators' reports
room and media IDs created for an asynchronous upload.

* ``openid_tokens``: client-server API "OpenID" tokens a user hands to a third party, which
  checks them with the federation ``openid/userinfo`` endpoint; only the SHA-256 of a token
  is stored, with its expiry.
* ``content_reports``: client-server API "Reporting content": an event, a room or a user
  reported by one of our users (``kind`` event | room | user).
* ``client_misc_rooms``: rooms the node made for its own purposes, by purpose (the
  moderators' "Reports" room), so a restart finds the same room.
* ``media_pending``: ``POST /_matrix/media/v1/create`` reserved these media IDs for their
  creator; the content arrives later with ``PUT /_matrix/media/v3/upload/{serverName}/
  {mediaId}`` (then the row goes and a ``local_media`` row takes its place).
"""

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from .meta import metadata

openid_tokens = Table(
    "openid_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # hex SHA-256 of the token
    Column("user_id", String(255), nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
)
Index("ix_openid_tokens_expires", openid_tokens.c.expires_ts)

content_reports = Table(
    "content_reports",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("kind", String(16), nullable=False),  # event | room | user
    Column("reporter", String(255), nullable=False),
    Column("room_id", String(255), nullable=True),
    Column("event_id", String(255), nullable=True),
    Column("target_user_id", String(255), nullable=True),
    Column("reason", Text, nullable=True),
    Column("score", Integer, nullable=True),  # -100 (most offensive) .. 0, events only
    Column("received_ts", BigInteger, nullable=False),
)
Index("ix_content_reports_reporter", content_reports.c.reporter, content_reports.c.received_ts)

client_misc_rooms = Table(
    "client_misc_rooms",
    metadata,
    Column("purpose", String(64), primary_key=True),
    Column("room_id", String(255), nullable=False),
)

media_pending = Table(
    "media_pending",
    metadata,
    Column("media_id", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("expires_ts", BigInteger, nullable=False),  # unused_expires_at of the spec
)
Index("ix_media_pending_user", media_pending.c.user_id)
Index("ix_media_pending_expires", media_pending.c.expires_ts)
