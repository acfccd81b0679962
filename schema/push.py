"""Push notifications (client-server API "Push Notifications"; Push Gateway API).

Owned by ``node/push``.

* ``push_rulesets``: one JSON document per user holding only what the user changed (their
  own rules, and the enabled flag / actions of server-default rules they changed); users
  who never touched their rules have no row.
* ``push_notifications``: one row per (user, event) that notified the user: the actions of
  the rule that matched, whether it highlights, the thread it belongs to ("main" outside
  threads).  Unread counts in ``/sync`` and ``GET /notifications`` read it.
* ``pushers``: HTTP pushers, unique per (user, app ID, pushkey).
* ``push_queue``: notifications waiting for delivery to a pusher's gateway, with the retry
  state, so a restart neither loses nor duplicates them.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .meta import metadata

_Id = BigInteger().with_variant(Integer, "sqlite")

push_rulesets = Table(
    "push_rulesets",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("document", Text, nullable=False),
)

push_notifications = Table(
    "push_notifications",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("room_id", String(255), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
    Column("thread_id", String(255), nullable=False),
    Column("highlight", Boolean, nullable=False),
    Column("actions", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)
Index(
    "ix_push_notifications_user_room",
    push_notifications.c.user_id,
    push_notifications.c.room_id,
    push_notifications.c.stream_ordering,
)
Index(
    "ix_push_notifications_user_stream",
    push_notifications.c.user_id,
    push_notifications.c.stream_ordering,
)

pushers = Table(
    "pushers",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("app_id", String(64), nullable=False),
    Column("pushkey", String(512), nullable=False),
    Column("pushkey_ts", BigInteger, nullable=False),
    Column("app_display_name", String(255), nullable=False),
    Column("device_display_name", String(255), nullable=False),
    Column("profile_tag", String(255), nullable=True),
    Column("lang", String(64), nullable=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("user_id", "app_id", "pushkey", name="uq_pushers_key"),
    sqlite_autoincrement=True,
)
Index("ix_pushers_app_pushkey", pushers.c.app_id, pushers.c.pushkey)

push_queue = Table(
    "push_queue",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("pusher_id", BigInteger, nullable=False),
    Column("notification", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_ts", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_push_queue_next", push_queue.c.next_ts)
Index("ix_push_queue_pusher", push_queue.c.pusher_id)
