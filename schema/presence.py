"""Presence status messages (client-server API "Presence").

Presence itself lives in memory (``node/sync/presence.py``): after a restart everybody is
offline until their clients sync again.  What a user typed as their status message is
theirs to keep, so ``presence_status`` holds it (local users only; no row: none).
"""

from sqlalchemy import BigInteger, Column, String, Table, Text

from .meta import metadata

presence_status = Table(
    "presence_status",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("status_msg", Text, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)
