"""Composition root: builds the node's services and routes from a ``Config``.

Areas and who owns them (each exposes ``wire(ctx, ...) -> Service`` in ``node/<area>/wiring.py``):
- ``node.accounts``: users, devices, access tokens, login/register/logout, profile, capabilities,
  versions, well-known; returns ``AccountsService`` (its ``authenticate`` feeds the HTTP layer).
- ``node.rooms``: event creation/persistence, room endpoints; returns ``RoomService``.
- ``node.sync``: notifier, sync, filters, typing, receipts, read markers, account data, user
  directory; returns ``SyncService``.
- ``node.media``: upload/download/thumbnail/config; returns ``MediaService``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Node:
    """A built node: its context and the services the CLI, tests and gateway may call."""

    ctx: Any
    accounts: Any
    rooms: Any
    sync: Any
    media: Any
    resource: Any          # the client API twisted.web resource
    metrics_resource: Any
