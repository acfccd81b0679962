"""Rooms, events and room state tables (client-server "Rooms", server-server "PDUs").

Shared contract between the rooms area (writes) and sync (reads).  ``stream_ordering`` is the
node-local total order of persisted events: the basis of sync tokens and /messages pagination.
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

rooms = Table(
    "rooms",
    metadata,
    Column("room_id", String(255), primary_key=True),
    Column("room_version", String(32), nullable=False),
    Column("creator", String(255), nullable=False),
    Column("is_public", Boolean, nullable=False, default=False),  # in the public room directory
    Column("room_type", String(255), nullable=True),  # e.g. m.space
    Column("created_ts", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column(
        "stream_ordering",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("event_id", String(255), nullable=False, unique=True),
    Column("room_id", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("state_key", String(255), nullable=True),
    Column("sender", String(255), nullable=False),
    Column("depth", BigInteger, nullable=False),
    Column("origin_server_ts", BigInteger, nullable=False),
    Column("json", Text, nullable=False),  # the PDU as signed (canonical JSON)
    Column("rejected_reason", Text, nullable=True),
    Column("redacted_by", String(255), nullable=True),
    Column("outlier", Boolean, nullable=False, default=False),
    # Server-generated ``unsigned`` data fixed at persist time (``replaces_state``,
    # ``prev_content``, ``prev_sender``) as JSON; NULL when there is none.
    Column("unsigned_json", Text, nullable=True),
)
Index("ix_events_room_stream", events.c.room_id, events.c.stream_ordering)

room_current_state = Table(
    "room_current_state",
    metadata,
    Column("room_id", String(255), nullable=False),
    Column("type", String(255), nullable=False),
    Column("state_key", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("membership", String(32), nullable=True),  # denormalised for member events
    PrimaryKeyConstraint("room_id", "type", "state_key"),
)
Index("ix_current_state_member", room_current_state.c.state_key, room_current_state.c.membership)

room_memberships = Table(
    "room_memberships",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("room_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("sender", String(255), nullable=False),
    Column("membership", String(32), nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
)
Index("ix_memberships_user", room_memberships.c.user_id, room_memberships.c.stream_ordering)

forward_extremities = Table(
    "forward_extremities",
    metadata,
    Column("room_id", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    PrimaryKeyConstraint("room_id", "event_id"),
)

event_txn_ids = Table(
    "event_txn_ids",
    metadata,
    Column("user_id", String(255), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("txn_id", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("inserted_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "device_id", "txn_id"),
)
# unsigned.transaction_id when serving an event back to the device that sent it.
Index("ix_event_txn_ids_event", event_txn_ids.c.event_id)
