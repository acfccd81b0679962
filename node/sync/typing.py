"""Typing notifications (client-server API "Typing Notifications", ``m.typing``).

Kept in memory only: who types where, until when.  Every change bumps a node-wide serial (the
``typing`` part of sync tokens) and records it as the room's typing position, so an incremental
sync sends a fresh ``m.typing`` event (the full list: clients *replace* their knowledge) for
exactly the rooms that changed.  Timeouts run on the injected clock.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000


class TypingManager:
    def __init__(self, clock: Any, notifier: Any) -> None:
        self.clock = clock
        self.notifier = notifier
        self.serial = 0
        # room -> user -> (expiry ms, timer)
        self._typing: dict[str, dict[str, tuple[int, Any]]] = {}
        self._room_serial: dict[str, int] = {}
        # ``fn(room_id, user_id, typing)`` after every start/refresh/stop/expiry (federation
        # sends its own users' typing to the room's other servers).
        self.listeners: list = []

    def set_typing(
        self, room_id: str, user_id: str, typing: bool, timeout_ms: int | None = None
    ) -> None:
        """Start (for ``timeout_ms``) or stop ``user_id`` typing in ``room_id``.

        Membership is checked by the caller.
        """
        users = self._typing.get(room_id)
        previous = users.get(user_id) if users else None
        if previous is not None and previous[1] is not None and previous[1].active():
            previous[1].cancel()
        if typing:
            if timeout_ms is None:
                timeout_ms = DEFAULT_TIMEOUT_MS
            timeout_ms = max(0, min(int(timeout_ms), MAX_TIMEOUT_MS))
            expiry = self.clock.time_ms() + timeout_ms
            timer = self.clock.call_later(
                timeout_ms / 1000.0, self._expire, room_id, user_id, expiry
            )
            if users is None:
                users = self._typing[room_id] = {}
            users[user_id] = (expiry, timer)
            if previous is None:  # a refresh of an ongoing typing span changes nothing
                self._changed(room_id)
            self._tell(room_id, user_id, True)
        elif previous is not None:
            self._remove(room_id, user_id)
            self._changed(room_id)
            self._tell(room_id, user_id, False)

    def _tell(self, room_id: str, user_id: str, typing: bool) -> None:
        for listener in self.listeners:
            try:
                listener(room_id, user_id, typing)
            except Exception:  # a listener never breaks typing
                import logging

                logging.getLogger("parta.sync").exception("typing listener failed")

    def _expire(self, room_id: str, user_id: str, expiry: int) -> None:
        users = self._typing.get(room_id)
        entry = users.get(user_id) if users else None
        if entry is None or entry[0] != expiry:
            return
        self._remove(room_id, user_id)
        self._changed(room_id)
        self._tell(room_id, user_id, False)

    def _remove(self, room_id: str, user_id: str) -> None:
        users = self._typing.get(room_id)
        if users is not None:
            users.pop(user_id, None)
            if not users:
                del self._typing[room_id]

    def _changed(self, room_id: str) -> None:
        self.serial += 1
        self._room_serial[room_id] = self.serial
        self.notifier.notify_room_stream(room_id, "typing", self.serial)

    def user_left(self, room_id: str, user_id: str) -> None:
        """Drop a user who left the room from its typing list."""
        self.set_typing(room_id, user_id, False)

    # --- readers ----------------------------------------------------------------------------
    def typing_users(self, room_id: str) -> list[str]:
        users = self._typing.get(room_id)
        return sorted(users) if users else []

    def typing_users_set(self, room_id: str) -> Any:
        """The room's typing users (a live, read-only view)."""
        return self._typing.get(room_id, {}).keys()

    def room_serial(self, room_id: str) -> int:
        return self._room_serial.get(room_id, 0)

    def typing_event(self, room_id: str) -> dict:
        return {"type": "m.typing", "content": {"user_ids": self.typing_users(room_id)}}

    def changed_rooms(self, room_ids: Any, since_serial: int) -> list[str]:
        """Rooms (among ``room_ids``) whose typing list changed after ``since_serial``."""
        rs = self._room_serial
        return [r for r in room_ids if rs.get(r, 0) > since_serial]
