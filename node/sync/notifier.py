"""The notifier: wakes long-polling ``/sync`` requests (client-server API "Syncing", ``timeout``).

Implements ``node.notifier.Notifier``.  It keeps, in memory, the latest position of every stream
per room (events, typing, public receipts) and per user (account data, private receipts, events
that concern a user who is not yet in the room: invites), plus the waiters of pending syncs:

- a waiter is registered under its user and under every room the sync covers;
- ``notify_room_event`` updates the room's position and fires the room's waiters (and those of
  ``extra_user_ids``), synchronously, without allocating anything per woken user;
- ``wait`` first checks the positions against the ``since`` token, so a notification that landed
  while the sync was computing its (empty) answer is never lost.

The per-room events position map doubles as the index that makes incremental sync cheap: the
handler only looks at rooms whose position moved past the client's token.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.internet import defer

from node.notifier import Notifier
from node.stream_tokens import StreamToken

ROOM_STREAMS = ("events", "typing", "receipts")
# to_device and device_lists: node/e2ee (a device's messages, co-members' key changes).
USER_STREAMS = ("events", "receipts", "account_data", "presence", "to_device", "device_lists")


class _Waiter:
    __slots__ = ("user_id", "room_ids", "deferred", "timer", "notifier")

    def __init__(self, notifier: "SyncNotifier", user_id: str, room_ids: tuple[str, ...]) -> None:
        self.notifier = notifier
        self.user_id = user_id
        self.room_ids = room_ids
        self.timer: Any = None
        self.deferred: defer.Deferred = defer.Deferred(self._cancelled)

    def fire(self, woken: bool) -> None:
        if self.deferred.called:
            return
        self._detach()
        self.deferred.callback(woken)

    def _cancelled(self, _d: defer.Deferred) -> None:
        # Client went away: forget the registrations (the Deferred errbacks CancelledError).
        self._detach()

    def _detach(self) -> None:
        if self.timer is not None:
            if self.timer.active():
                self.timer.cancel()
            self.timer = None
        self.notifier._unregister(self)


class SyncNotifier(Notifier):
    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.room_events: dict[str, int] = {}  # room -> latest event stream ordering
        self.room_typing: dict[str, int] = {}
        self.room_receipts: dict[str, int] = {}
        self.user_pos: dict[str, dict[str, int]] = {}
        self.current = {"events": 0, "typing": 0, "receipts": 0, "account_data": 0}
        self._room_waiters: dict[str, set[_Waiter]] = {}
        self._user_waiters: dict[str, set[_Waiter]] = {}

    # --- producers --------------------------------------------------------------------------
    def notify_room_event(
        self, room_id: str, stream_ordering: int, extra_user_ids: Iterable[str] = ()
    ) -> None:
        if stream_ordering > self.room_events.get(room_id, 0):
            self.room_events[room_id] = stream_ordering
        if stream_ordering > self.current["events"]:
            self.current["events"] = stream_ordering
        self._wake_room(room_id)
        for user_id in extra_user_ids:
            self._advance_user(user_id, "events", stream_ordering)
            self._wake_user(user_id)

    def notify_room_stream(self, room_id: str, stream: str, position: int) -> None:
        """A room-scoped ephemeral stream (``typing``, ``receipts``) advanced in ``room_id``."""
        positions = self.room_typing if stream == "typing" else self.room_receipts
        if position > positions.get(room_id, 0):
            positions[room_id] = position
        if position > self.current.get(stream, 0):
            self.current[stream] = position
        self._wake_room(room_id)

    def notify_users(
        self, user_ids: Iterable[str], stream: str, position: int | None = None
    ) -> None:
        """A per-user stream advanced (``account_data``, private ``receipts``, ...).

        The current position moves first: a woken sync recomputes at once and must see it
        (else its answer is empty, its ``since`` stays behind the user's position and it
        would be woken again and again)."""
        if position is not None and position > self.current.get(stream, 0):
            self.current[stream] = position
        for user_id in user_ids:
            if position is not None and stream in USER_STREAMS:
                self._advance_user(user_id, stream, position)
            self._wake_user(user_id)

    def load_room_positions(self, positions: dict[str, int]) -> None:
        """Seed the per-room event positions (start-up, from the events table)."""
        for room_id, pos in positions.items():
            if pos > self.room_events.get(room_id, 0):
                self.room_events[room_id] = pos
            if pos > self.current["events"]:
                self.current["events"] = pos

    def set_current(self, stream: str, position: int) -> None:
        if position > self.current.get(stream, 0):
            self.current[stream] = position

    # --- readers ----------------------------------------------------------------------------
    def current_token(self) -> StreamToken:
        c = self.current
        return StreamToken(
            c["events"],
            c["typing"],
            c["receipts"],
            c["account_data"],
            c.get("presence", 0),
            c.get("to_device", 0),
            c.get("device_lists", 0),
        )

    def rooms_changed_since(self, room_ids: Iterable[str], since: StreamToken) -> set[str]:
        """Rooms among ``room_ids`` whose events, typing or receipts moved past ``since``."""
        ev, ty, rc = self.room_events, self.room_typing, self.room_receipts
        return {
            r
            for r in room_ids
            if ev.get(r, 0) > since.events
            or ty.get(r, 0) > since.typing
            or rc.get(r, 0) > since.receipts
        }

    def user_changed_since(self, user_id: str, since: StreamToken) -> bool:
        pos = self.user_pos.get(user_id)
        if not pos:
            return False
        return (
            pos.get("events", 0) > since.events
            or pos.get("receipts", 0) > since.receipts
            or pos.get("account_data", 0) > since.account_data
            or pos.get("presence", 0) > since.presence
            or pos.get("to_device", 0) > since.to_device
            or pos.get("device_lists", 0) > since.device_lists
        )

    def changed_for(self, user_id: str, room_ids: Iterable[str], since: StreamToken) -> bool:
        if self.user_changed_since(user_id, since):
            return True
        ev, ty, rc = self.room_events, self.room_typing, self.room_receipts
        for r in room_ids:
            if (
                ev.get(r, 0) > since.events
                or ty.get(r, 0) > since.typing
                or rc.get(r, 0) > since.receipts
            ):
                return True
        return False

    # --- waiting ----------------------------------------------------------------------------
    def wait(
        self, user_id: str, room_ids: Iterable[str], since: StreamToken, timeout_ms: int
    ) -> defer.Deferred:
        """Fires ``True`` when something for the user moved past ``since``, ``False`` on timeout.

        Cancel the returned Deferred when the client disconnects: the waiter is dropped.
        """
        rooms = tuple(room_ids)
        if self.changed_for(user_id, rooms, since):
            return defer.succeed(True)
        if timeout_ms <= 0:
            return defer.succeed(False)
        waiter = _Waiter(self, user_id, rooms)
        for r in rooms:
            self._room_waiters.setdefault(r, set()).add(waiter)
        self._user_waiters.setdefault(user_id, set()).add(waiter)
        waiter.timer = self.clock.call_later(timeout_ms / 1000.0, waiter.fire, False)
        return waiter.deferred

    def waiter_count(self) -> int:
        return sum(len(s) for s in self._user_waiters.values())

    # --- internals --------------------------------------------------------------------------
    def _advance_user(self, user_id: str, stream: str, position: int) -> None:
        pos = self.user_pos.setdefault(user_id, {})
        if position > pos.get(stream, 0):
            pos[stream] = position

    def _wake_room(self, room_id: str) -> None:
        waiters = self._room_waiters.pop(room_id, None)
        if waiters:
            for w in waiters:
                w.fire(True)

    def _wake_user(self, user_id: str) -> None:
        waiters = self._user_waiters.pop(user_id, None)
        if waiters:
            for w in waiters:
                w.fire(True)

    def _unregister(self, waiter: _Waiter) -> None:
        for r in waiter.room_ids:
            s = self._room_waiters.get(r)
            if s is not None:
                s.discard(waiter)
                if not s:
                    del self._room_waiters[r]
        s = self._user_waiters.get(waiter.user_id)
        if s is not None:
            s.discard(waiter)
            if not s:
                del self._user_waiters[waiter.user_id]


def make_notifier(ctx: Any) -> SyncNotifier:
    """Composition-root entry point (see ``node/app.py``)."""
    return SyncNotifier(ctx.clock)
