"""What one ``/sync`` computation works from (client-server API "Syncing",
https://spec.matrix.org/v1.16/client-server-api/#syncing): the request's parameters and the
per-computation state the room sections (joined, left, unread counts) read.

Kept apart from ``handler.py`` so the section modules can share it without importing the
handler (the sibling modules of ``node/sync`` import one another without cycles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.filtering import Filter
from node.stream_tokens import StreamToken


@dataclass
class SyncParams:
    requester: Any  # node.http.request.Requester
    filter: Filter
    since: StreamToken | None = None
    full_state: bool = False
    timeout_ms: int = 0

    @property
    def user_id(self) -> str:
        return self.requester.user_id


@dataclass
class SyncRun:
    """State of one computation."""

    p: SyncParams
    since: StreamToken | None
    upper: StreamToken
    full: bool
    ad_rooms: dict[str, list[dict]] = field(default_factory=dict)
    receipts: dict[str, dict] = field(default_factory=dict)
    read_pos: dict[str, int] = field(default_factory=dict)
    # Senders the user ignores (client-server API "Ignoring Users", node/sync/ignored.py).
    ignored: frozenset[str] = frozenset()

    @property
    def user_id(self) -> str:
        return self.p.requester.user_id

    @property
    def filter(self) -> Filter:
        return self.p.filter
