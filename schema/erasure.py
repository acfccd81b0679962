"""Erased accounts (client-server API "Account deactivation", ``erase: true``).

* ``erased_users``: one row per local account deactivated with ``erase``.  The user's events
  stay stored as signed (other servers may need them); users who join after the erasure are
  served redacted copies.  ``stream_ordering`` is the events stream position when the
  erasure was recorded: whoever could see an event up to that position keeps seeing it as
  it was (the spec's "users which had visibility on those events prior to the erasure").
"""

from sqlalchemy import BigInteger, Column, String, Table

from .meta import metadata

erased_users = Table(
    "erased_users",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("erased_ts", BigInteger, nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
)
