"""Wakes waiting ``/sync`` requests when something they care about happens.

Interface used by the rest of the node (helper areas code against these names):
- ``notify_room_event(room_id, stream_ordering, extra_user_ids=())``: a new event was persisted in
  ``room_id`` (``extra_user_ids``: users not joined who must wake too, e.g. the invitee).
- ``notify_users(user_ids, stream)``: a per-user stream (account data, receipts, typing, to-device)
  advanced.
- ``async wait(user_id, room_ids, since, timeout_ms)``: used by sync.
"""

from __future__ import annotations

from typing import Iterable


class Notifier:
    def notify_room_event(
        self, room_id: str, stream_ordering: int, extra_user_ids: Iterable[str] = ()
    ) -> None:
        raise NotImplementedError

    def notify_users(self, user_ids: Iterable[str], stream: str) -> None:
        raise NotImplementedError
