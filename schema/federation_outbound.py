"""Outbound federation queue (server-server API "Transactions": at most 50 PDUs and 100 EDUs
per transaction, one transaction in flight per destination, retried with the same
``txnId`` until it succeeds).

Owned by ``node/federation/outbound``.

* ``federation_destinations``: one row per remote server we have sent to -- the
  transaction in flight (``inflight_txn_id``: its rows carry that ``txn_id``, so a retry
  after a restart resends exactly the same transaction), the last successful one, and the
  retry state (``failures``, ``retry_interval_ms``, ``next_retry_ts``).
* ``federation_outbound_pdus``: PDUs waiting for a destination, in stream order; the JSON
  is read from ``events`` when the transaction is built.  ``(destination, event_id)`` is
  unique: an event is queued once per destination.
* ``federation_outbound_edus``: EDUs waiting for a destination (JSON content).  A newer
  EDU with the same ``coalesce_key`` (e.g. one user's typing in one room) replaces an
  unsent older one.
* ``federation_outbound_position``: how far the fan-out has read the event stream
  (``stream_ordering``), written in the same transaction as the queue rows, so events
  committed just before a crash are fanned out on the next start -- and none twice.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from .meta import metadata

_Id = BigInteger().with_variant(Integer, "sqlite")

federation_destinations = Table(
    "federation_destinations",
    metadata,
    Column("destination", String(255), primary_key=True),
    Column("txn_counter", BigInteger, nullable=False, default=0),
    Column("inflight_txn_id", String(255), nullable=True),
    Column("last_txn_id", String(255), nullable=True),
    Column("last_success_ts", BigInteger, nullable=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("retry_interval_ms", BigInteger, nullable=False, default=0),
    Column("next_retry_ts", BigInteger, nullable=False, default=0),
)

federation_outbound_pdus = Table(
    "federation_outbound_pdus",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("destination", String(255), nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("txn_id", String(255), nullable=True),
    UniqueConstraint("destination", "event_id", name="uq_federation_outbound_pdus_dest_event"),
)
Index(
    "ix_federation_outbound_pdus_dest",
    federation_outbound_pdus.c.destination,
    federation_outbound_pdus.c.stream_ordering,
)

federation_outbound_edus = Table(
    "federation_outbound_edus",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("destination", String(255), nullable=False),
    Column("edu_type", String(255), nullable=False),
    Column("content", Text, nullable=False),
    Column("coalesce_key", String(1024), nullable=True),
    Column("txn_id", String(255), nullable=True),
)
Index(
    "ix_federation_outbound_edus_dest",
    federation_outbound_edus.c.destination,
    federation_outbound_edus.c.id,
)

federation_outbound_position = Table(
    "federation_outbound_position",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("stream_ordering", BigInteger, nullable=False),
)
