"""Presence (client-server API "Presence", ``m.presence``; server-server API "Presence").

What a user's presence is: ``online``, ``unavailable`` or ``offline``, an optional
``status_msg``, the time of their last pro-active action (sent as ``last_active_ago``)
and ``currently_active``.  Kept in memory only, like typing: after a restart everybody is
offline until their clients sync again.

Who may see it ("Security considerations": presence goes to the users who share a room
with the user): a user sees their own presence, and the presence of a user they share a
joined room with -- if presence is shared at all.  On a school node that is a policy
decision: ``presence.enabled`` (default off) switches it on, and ``presence.roles``
(default ``director``, ``teacher``) names the roles whose presence is shared, so pupils'
comings and goings are not broadcast.  Presence of users on other servers (from
``m.presence`` EDUs) is shared under the same room rule.

Changes that clients need to hear about (the state, the status message,
``currently_active``) bump a node-wide serial -- the ``presence`` part of sync tokens --
and wake the syncs of the users who share a room with the user.  A mere bump of the last
active time does not, as "Last active ago" allows while ``currently_active`` is true.

Status messages of local users survive restarts (``schema/presence.py``): written when a
user changes theirs, read once at start-up.

Timers run on the injected clock, one sweep every ``SWEEP_SECONDS``: an online user with
no pro-active action for ``idle_ms`` becomes ``unavailable`` ("Idle timeout"), and a user
with no running ``/sync`` and no request for ``offline_ms`` becomes ``offline``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Iterable, Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from schema.presence import presence_status

log = logging.getLogger("parta.sync.presence")

STATES = ("online", "unavailable", "offline")
SWEEP_SECONDS = 15.0
CURRENTLY_ACTIVE_MS = 60_000
MAX_STATUS_MSG_CHARS = 256
MAX_SYNC_EVENTS = 500  # presence events in one /sync answer
MAX_REMEMBERED = 100_000  # users whose presence is kept in memory


class RoomsForPresence(Protocol):
    """What presence needs from the rooms area."""

    async def rooms_shared_with(self, user_id: str) -> set[str]: ...


class PresenceNotifier(Protocol):
    def notify_users(
        self, user_ids: Iterable[str], stream: str, position: int | None = None
    ) -> None: ...


@dataclass
class UserPresence:
    presence: str = "offline"
    status_msg: str | None = None
    last_active_ts: int = 0
    currently_active: bool = False
    last_seen_ts: int = 0  # the last /sync or presence request (local users)
    serial: int = 0  # when a client-visible part last changed
    told: tuple[str, str | None, bool] | None = None  # what the last change announced

    def visible_key(self) -> tuple[str, str | None, bool]:
        return (self.presence, self.status_msg, self.currently_active)


Listener = Callable[[str, dict], Any]


def load_status_messages(conn: Connection) -> dict[str, str]:
    return {
        r[0]: r[1]
        for r in conn.execute(select(presence_status.c.user_id, presence_status.c.status_msg))
    }


def save_status_message(conn: Connection, user_id: str, msg: str | None, now_ms: int) -> None:
    conn.execute(delete(presence_status).where(presence_status.c.user_id == user_id))
    if msg is not None:
        conn.execute(
            insert(presence_status).values(user_id=user_id, status_msg=msg, updated_ts=now_ms)
        )


class PresenceManager:
    def __init__(
        self,
        *,
        clock: Any,
        notifier: PresenceNotifier,
        rooms: RoomsForPresence,
        server_name: str,
        role_of: Callable[[str], str | None],
        enabled: bool = False,
        roles: Iterable[str] = ("director", "teacher"),
        idle_ms: int = 300_000,
        offline_ms: int = 90_000,
        db: Any = None,
    ) -> None:
        self.clock = clock
        self.notifier = notifier
        self.rooms = rooms
        self.server_name = server_name
        self.role_of = role_of
        self.enabled = enabled
        self.roles = frozenset(roles)
        self.idle_ms = idle_ms
        self.offline_ms = offline_ms
        self.db = db  # keeps status messages (None: memory only)
        self.serial = 0
        self._states: dict[str, UserPresence] = {}
        self._changes: OrderedDict[str, int] = OrderedDict()  # user -> serial, oldest first
        self._syncing: dict[str, int] = {}  # local user -> running /sync requests
        # ``fn(user_id, presence_content)`` for every visible change of a *local* user whose
        # presence is shared (the federation area sends ``m.presence`` EDUs).
        self.listeners: list[Listener] = []
        self._sweep_call: Any = None
        self._pending: set[Any] = set()

    # --- lifecycle --------------------------------------------------------------------
    def load(self, messages: dict[str, str]) -> None:
        """Start-up: the stored status messages (their users are offline until they sync)."""
        for user_id, msg in list(messages.items())[:MAX_REMEMBERED]:
            st = self._state(user_id)
            st.status_msg = msg
            st.told = st.visible_key()

    def start(self) -> None:
        if self.enabled and self._sweep_call is None:
            self._sweep_call = self.clock.call_later(SWEEP_SECONDS, self._sweep)

    def stop(self) -> None:
        call, self._sweep_call = self._sweep_call, None
        if call is not None and call.active():
            call.cancel()

    # --- policy -----------------------------------------------------------------------
    def is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.server_name)

    def is_shared(self, user_id: str) -> bool:
        """Is this user's presence shared at all (the school's policy)?"""
        if not self.enabled:
            return False
        if not self.is_local(user_id):
            return True
        return self.role_of(user_id) in self.roles

    async def may_see(self, viewer: str, target: str) -> bool:
        if not self.enabled:
            return False
        if viewer == target:
            return True
        if not self.is_shared(target):
            return False
        return target in await self.rooms.rooms_shared_with(viewer)

    # --- reading ----------------------------------------------------------------------
    def content(self, user_id: str, *, with_user_id: bool = False) -> dict[str, Any]:
        """The ``m.presence`` content (``GET /presence/{userId}/status`` body)."""
        st = self._states.get(user_id) or UserPresence()
        out: dict[str, Any] = {"presence": st.presence}
        if st.last_active_ts:
            out["last_active_ago"] = max(0, self.clock.time_ms() - st.last_active_ts)
        if st.status_msg is not None:
            out["status_msg"] = st.status_msg
        if st.presence == "online":
            out["currently_active"] = st.currently_active
        if with_user_id:
            out["user_id"] = user_id
        return out

    def event(self, user_id: str) -> dict[str, Any]:
        return {"type": "m.presence", "sender": user_id, "content": self.content(user_id)}

    async def sync_events(
        self, viewer: str, since: int | None, upper: int, newcomers: Iterable[str] = ()
    ) -> list[dict]:
        """The ``presence.events`` of a ``/sync``: for an initial sync (``since`` None) the
        presence of every visible user this node knows; otherwise of those whose presence
        changed after ``since`` (up to ``upper``), plus ``newcomers`` (the members of rooms
        the viewer joined since: their presence is news to the viewer)."""
        if not self.enabled:
            return []
        if since is not None:
            changed: list[str] = []
            for user_id in reversed(self._changes):
                serial = self._changes[user_id]
                if serial <= since:
                    break
                if serial <= upper:
                    changed.append(user_id)
            changed.reverse()
            seen = set(changed)
            changed += sorted(u for u in newcomers if u in self._states and u not in seen)
            if not changed:
                return []
        visible = await self.rooms.rooms_shared_with(viewer)
        visible.add(viewer)
        if since is not None:
            candidates: Iterable[str] = changed
        else:  # the users sharing a room, not every user this node knows
            candidates = sorted(u for u in visible if u in self._states)
        out = []
        for user_id in candidates:
            if user_id != viewer and (user_id not in visible or not self.is_shared(user_id)):
                continue
            out.append(self.event(user_id))
            if len(out) >= MAX_SYNC_EVENTS:
                break
        return out

    # --- local users ------------------------------------------------------------------
    async def set_presence(self, user_id: str, presence: str, status_msg: Any = ...) -> None:
        """``PUT /presence/{userId}/status``: ``status_msg`` ``...`` keeps the old one."""
        if not self.enabled:
            return
        now = self.clock.time_ms()
        st = self._state(user_id)
        st.last_seen_ts = now
        if status_msg is not ... and status_msg != st.status_msg:
            st.status_msg = status_msg
            if self.db is not None:
                await self.db.run(save_status_message, user_id, status_msg, now)
        if presence == "online":
            st.last_active_ts = now
            st.currently_active = True
        elif presence != st.presence:
            st.currently_active = False
        st.presence = presence
        await self._maybe_changed(user_id, st)

    def sync_started(self, user_id: str, set_presence: str | None) -> None:
        """A ``/sync`` began: the user is there (``set_presence`` default ``online``;
        ``offline`` leaves the presence alone, as the spec's ``set_presence`` says)."""
        if not self.enabled:
            return
        self._syncing[user_id] = self._syncing.get(user_id, 0) + 1
        st = self._state(user_id)
        st.last_seen_ts = self.clock.time_ms()
        wanted = set_presence or "online"
        if wanted == "online" and st.presence == "offline":
            st.presence = "online"
            st.last_active_ts = st.last_seen_ts
            st.currently_active = True
        elif wanted == "unavailable" and st.presence != "unavailable":
            st.presence = "unavailable"
            st.currently_active = False
        else:
            return
        self._spawn(self._maybe_changed(user_id, st))

    def sync_ended(self, user_id: str) -> None:
        if not self.enabled:
            return
        count = self._syncing.get(user_id, 0) - 1
        if count > 0:
            self._syncing[user_id] = count
        else:
            self._syncing.pop(user_id, None)
        st = self._states.get(user_id)
        if st is not None:
            st.last_seen_ts = self.clock.time_ms()

    def note_active(self, user_id: str) -> None:
        """A pro-active action (the user sent an event): online, last active now."""
        if not self.enabled or not self.is_local(user_id):
            return
        st = self._state(user_id)
        now = self.clock.time_ms()
        st.last_active_ts = now
        st.last_seen_ts = max(st.last_seen_ts, now)
        if st.presence != "online" or not st.currently_active:
            st.presence = "online"
            st.currently_active = True
            self._spawn(self._maybe_changed(user_id, st))

    # --- remote users -----------------------------------------------------------------
    async def receive_remote(self, origin: str, push: dict) -> None:
        """One entry of an ``m.presence`` EDU's ``push`` list, already checked to name a
        user of ``origin``."""
        if not self.enabled:
            return
        user_id = push["user_id"]
        st = self._state(user_id)
        st.presence = push["presence"]
        ago = push.get("last_active_ago")
        if isinstance(ago, int) and 0 <= ago < 2**53:
            st.last_active_ts = self.clock.time_ms() - ago
        msg = push.get("status_msg")
        st.status_msg = msg[:MAX_STATUS_MSG_CHARS] if isinstance(msg, str) else None
        st.currently_active = push.get("currently_active") is True and st.presence == "online"
        await self._maybe_changed(user_id, st)

    # --- internals --------------------------------------------------------------------
    def _state(self, user_id: str) -> UserPresence:
        st = self._states.get(user_id)
        if st is None:
            if len(self._states) >= MAX_REMEMBERED:
                self._forget_one_offline()
            st = self._states[user_id] = UserPresence()
        return st

    def _forget_one_offline(self) -> None:
        for user_id, serial in self._changes.items():
            st = self._states.get(user_id)
            if st is not None and st.presence == "offline" and st.serial == serial:
                del self._states[user_id]
                del self._changes[user_id]
                return

    async def _maybe_changed(self, user_id: str, st: UserPresence) -> None:
        """Announce the user's presence if a client-visible part changed."""
        key = st.visible_key()
        if key == st.told:
            return
        st.told = key
        self.serial += 1
        st.serial = self.serial
        self._changes[user_id] = self.serial
        self._changes.move_to_end(user_id)
        if not self.is_shared(user_id):
            self.notifier.notify_users([user_id], "presence", self.serial)
            return
        audience = await self.rooms.rooms_shared_with(user_id)
        audience.add(user_id)
        self.notifier.notify_users(audience, "presence", self.serial)
        if self.is_local(user_id):
            content = self.content(user_id, with_user_id=True)
            for listener in self.listeners:
                try:
                    listener(user_id, content)
                except Exception:  # a listener never breaks presence
                    log.exception("event=presence_listener_failed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        from twisted.internet import defer

        d = defer.ensureDeferred(coro)
        self._pending.add(d)

        def done(result: Any) -> Any:
            self._pending.discard(d)
            return result

        d.addBoth(done)
        d.addErrback(lambda f: log.warning("event=presence_update_failed error=%s", f.value))

    def _sweep(self) -> None:
        self._sweep_call = self.clock.call_later(SWEEP_SECONDS, self._sweep)
        now = self.clock.time_ms()
        for user_id, st in list(self._states.items()):
            if st.presence == "offline" or not self.is_local(user_id):
                continue
            changed = False
            if user_id not in self._syncing and now - st.last_seen_ts > self.offline_ms:
                st.presence, st.currently_active, changed = "offline", False, True
            elif st.presence == "online" and now - st.last_active_ts > self.idle_ms:
                st.presence, st.currently_active, changed = "unavailable", False, True
            elif st.currently_active and now - st.last_active_ts > CURRENTLY_ACTIVE_MS:
                st.currently_active, changed = False, True
            if changed:
                self._spawn(self._maybe_changed(user_id, st))
