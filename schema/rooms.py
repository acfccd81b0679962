"""Room directory and per-user room bookkeeping (client-server API "Room aliases",
"Published room directory", "Leaving rooms" > forget).

Owned by the rooms area (``node/rooms``).  The event tables it works with live in
``schema/events.py`` (shared with sync).
"""

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table

from .meta import metadata

# Client-server API "Room aliases": local aliases only (``#localpart:our.server``).
room_aliases = Table(
    "room_aliases",
    metadata,
    Column("room_alias", String(255), primary_key=True),
    Column("room_id", String(255), nullable=False),
    Column("creator", String(255), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
)
Index("ix_room_aliases_room", room_aliases.c.room_id)

# POST /rooms/{roomId}/forget: the user no longer sees the room (history, sync leaves).
forgotten_rooms = Table(
    "forgotten_rooms",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("forgotten_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "room_id"),
)
