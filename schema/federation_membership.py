"""Out-of-band memberships of rooms this server does not participate in.

Owned by ``node/federation/membership``.  Spec: server-server API "Inviting to a room"
(``invite_room_state``: state events that help the invitee identify the room, shown to
clients as stripped state), "Knocking upon a room" (``knock_room_state``).

``federation_remote_invites`` keeps that room state per invite/knock event, so ``/sync``
can show the invite with its ``invite_state`` although this server has none of the
room's state; the membership event itself is stored in ``events`` like any other.
"""

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from .meta import metadata

federation_remote_invites = Table(
    "federation_remote_invites",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("room_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("membership", String(32), nullable=False),  # invite | knock
    Column("origin", String(255), nullable=False),
    Column("room_version", String(32), nullable=False),
    Column("stripped_state", Text, nullable=False),  # JSON list (client format)
    Column("received_ts", BigInteger, nullable=False),
)
Index(
    "ix_federation_remote_invites_room_user",
    federation_remote_invites.c.room_id,
    federation_remote_invites.c.user_id,
)
