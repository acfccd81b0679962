"""Event relationships (client-server API "Forming relationships between events",
"Threading", "Event replacements", "Reference relations").

Owned by the rooms area (``node/rooms/relations_store.py``): one row per event whose
cleartext ``content.m.relates_to`` has string ``rel_type`` and ``event_id`` (a rich reply's
``m.in_reply_to`` alone is no relation), written in the same transaction as the event and
deleted when the event is redacted (a redacted child no longer relates).  The parent is
only named: it may be unknown, or in another room (then the relation is ignored on read).

``event_threads`` keeps one row per thread root with the stream ordering of its latest
reply, so ``GET /rooms/{roomId}/threads`` pages by latest activity without grouping all of a
room's replies on every request.
"""

from sqlalchemy import BigInteger, Boolean, Column, Index, PrimaryKeyConstraint, String, Table

from .meta import metadata

event_relations = Table(
    "event_relations",
    metadata,
    Column("event_id", String(255), primary_key=True),  # the child
    Column("room_id", String(255), nullable=False),
    Column("relates_to_id", String(255), nullable=False),  # the parent
    Column("rel_type", String(255), nullable=False),
    Column("type", String(255), nullable=False),  # the child's event type
    Column("sender", String(255), nullable=False),
    Column("origin_server_ts", BigInteger, nullable=False),  # orders replacements
    Column("stream_ordering", BigInteger, nullable=False),
    # m.replace only: the child alone may be a valid replacement (not a state event, and
    # ``m.new_content`` is an object unless it is encrypted); the rules that involve the
    # original event are checked when serving it.
    Column("replace_ok", Boolean, nullable=False, default=False),
    # m.annotation only: the annotation ``key`` (e.g. the reaction's emoji) when it fits
    # the column, for refusing a user's duplicate annotation.
    Column("aggregation_key", String(255), nullable=True),
)
Index(
    "ix_event_relations_parent",
    event_relations.c.relates_to_id,
    event_relations.c.rel_type,
    event_relations.c.stream_ordering,
)

event_threads = Table(
    "event_threads",
    metadata,
    Column("room_id", String(255), nullable=False),
    Column("thread_id", String(255), nullable=False),  # the thread root's event ID
    Column("latest_stream_ordering", BigInteger, nullable=False),
    PrimaryKeyConstraint("room_id", "thread_id"),
)
Index(
    "ix_event_threads_latest",
    event_threads.c.room_id,
    event_threads.c.latest_stream_ordering,
)
