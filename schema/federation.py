"""Federation core tables: room state at every event, inbound transactions, remote keys.

Owned by ``node/federation`` (state storage is also used by ``node/rooms`` for local events).

Spec: server-server API "Room State Resolution" (the state of a room is a map of
``(event_type, state_key)`` to ``event_id``; every event has a state before and after it),
"Transactions" (``PUT /send/{txnId}``: idempotent per origin and transaction ID),
"Retrieving server keys".

* ``state_groups``: a state map, stored as a *delta* against ``prev_group`` (``NULL`` for a
  full snapshot).  ``chain_len`` is the number of deltas between this group and its
  snapshot, so reads walk at most a bounded chain; ``event_id`` names the event that made
  the group (informational, ``NULL`` for a resolved state).
* ``state_group_entries``: the delta (or snapshot) rows of a group; ``event_id`` ``NULL``
  means the key is removed by this delta (state resolution may drop a key).
* ``event_state_groups``: the state before and after each non-outlier event.  A message
  event has ``before_group == after_group``.
* ``room_state_groups``: the group holding each room's current (resolved) state.
* ``federation_inbound_txns``: the response of every processed ``/send`` transaction, so a
  retried transaction gets the same answer and nothing is processed twice.
* ``remote_server_keys``: validated ``/_matrix/key/v2/server`` responses of other servers,
  one row per distinct key set, so a restart does not refetch every key.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from .meta import metadata

state_groups = Table(
    "state_groups",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("room_id", String(255), nullable=False),
    Column("prev_group", BigInteger, nullable=True),
    Column("chain_len", Integer, nullable=False),
    Column("event_id", String(255), nullable=True),
)
Index("ix_state_groups_room", state_groups.c.room_id)

state_group_entries = Table(
    "state_group_entries",
    metadata,
    Column("group_id", BigInteger, nullable=False),
    Column("type", String(255), nullable=False),
    Column("state_key", String(255), nullable=False),
    Column("event_id", String(255), nullable=True),
    PrimaryKeyConstraint("group_id", "type", "state_key"),
)

event_state_groups = Table(
    "event_state_groups",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("room_id", String(255), nullable=False),
    Column("before_group", BigInteger, nullable=False),
    Column("after_group", BigInteger, nullable=False),
)

room_state_groups = Table(
    "room_state_groups",
    metadata,
    Column("room_id", String(255), primary_key=True),
    Column("state_group", BigInteger, nullable=False),
)

federation_inbound_txns = Table(
    "federation_inbound_txns",
    metadata,
    Column("origin", String(255), nullable=False),
    Column("txn_id", String(255), nullable=False),
    Column("response", Text, nullable=False),
    Column("received_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("origin", "txn_id"),
)
Index("ix_federation_inbound_txns_ts", federation_inbound_txns.c.received_ts)

remote_server_keys = Table(
    "remote_server_keys",
    metadata,
    Column("server_name", String(255), nullable=False),
    Column("key_ids", String(1024), nullable=False),  # sorted, comma-separated
    Column("response", Text, nullable=False),
    Column("received_ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("server_name", "key_ids"),
)
