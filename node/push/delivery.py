"""Delivery of notifications to push gateways (Push Gateway API,
https://spec.matrix.org/v1.16/push-gateway-api/).

Each notification for a user with pushers becomes one ``push_queue`` row per pusher,
written in the same transaction as the notification rows (``enqueue_extra``), so a
restart neither loses nor repeats them.  A worker sends due rows (``BATCH`` at a time, at
most ``CONCURRENCY`` requests at once) as ``POST .../_matrix/push/v1/notify`` with the
spec's body: ``event_id``, ``room_id``, ``counts`` (the user's unread notifications in
their rooms with notifications; zero counts omitted), ``prio``, one ``devices`` entry
(``app_id``, ``pushkey``, ``pushkey_ts``, ``data`` without ``url``, ``tweaks``) and, unless
the pusher's ``data.format`` is ``event_id_only``, the event's ``type``, ``sender``,
``content`` and ``user_is_target``.

A 2xx answer removes the row, and the pusher when the gateway lists its pushkey in
``rejected``.  Connection failures, timeouts, 429 and 5xx are retried with exponential
backoff (``RETRY_BASE_MS`` doubling up to ``RETRY_MAX_MS``) until ``MAX_ATTEMPTS``; other
answers drop the row.  A refused address (``push.ip_range_*``) counts as a failure.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import delete, func, insert, select, update
from twisted.internet import defer

from schema.push import push_notifications, push_queue

from .counts import UnreadCounts
from .notify import Notification
from .pushers import Pusher, PusherStore

if TYPE_CHECKING:
    from node.rooms.persister import EventPersister

log = logging.getLogger("parta.push")

BATCH = 100
CONCURRENCY = 8
MAX_ATTEMPTS = 12
RETRY_BASE_MS = 2_000
RETRY_MAX_MS = 3_600_000
COUNT_ROOMS = 50  # rooms summed for counts.unread


class Gateway(Protocol):
    async def post(self, url: str, body: dict) -> tuple[int, Any]: ...


def backoff_ms(attempts: int) -> int:
    return min(RETRY_MAX_MS, RETRY_BASE_MS * (2 ** max(0, attempts - 1)))


def payload(note: Notification, pusher: Pusher) -> dict:
    """What is stored per queued push: the notification without counts and devices."""
    out: dict[str, Any] = {
        "event_id": note.event_id,
        "room_id": note.room_id,
        "prio": "high" if ("sound" in note.tweaks or note.highlight) else "low",
        "tweaks": note.tweaks,
        "user_id": note.user_id,
    }
    ev = note.event
    if ev is not None and pusher.data.get("format") != "event_id_only":
        out["type"] = ev.type
        out["sender"] = ev.sender
        out.update(note.details)
        if ev.content:
            out["content"] = ev.content
        if ev.type == "m.room.member":
            out["user_is_target"] = ev.state_key == note.user_id
    return out


def _insert(conn: Any, rows: list[dict]) -> None:
    conn.execute(insert(push_queue), rows)


def _due(conn: Any, now: int, limit: int) -> list:
    q = (
        select(
            push_queue.c.id,
            push_queue.c.pusher_id,
            push_queue.c.notification,
            push_queue.c.attempts,
        )
        .where(push_queue.c.next_ts <= now)
        .order_by(push_queue.c.id)
        .limit(limit)
    )
    return list(conn.execute(q))


def _finish(conn: Any, done: list[int], retry: list[tuple[int, int, int]]) -> int | None:
    """Delete ``done``, reschedule ``retry`` (id, attempts, next_ts); the next due time."""
    if done:
        conn.execute(delete(push_queue).where(push_queue.c.id.in_(done)))
    for row_id, attempts, next_ts in retry:
        conn.execute(
            update(push_queue)
            .where(push_queue.c.id == row_id)
            .values(attempts=attempts, next_ts=next_ts)
        )
    return conn.execute(select(func.min(push_queue.c.next_ts))).scalar()


def _recent_rooms(conn: Any, user_id: str, limit: int) -> list[str]:
    c = push_notifications.c
    q = (
        select(c.room_id)
        .where(c.user_id == user_id)
        .group_by(c.room_id)
        .order_by(func.max(c.stream_ordering).desc())
        .limit(limit)
    )
    return [r[0] for r in conn.execute(q)]


class PushDelivery:
    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        pushers: PusherStore,
        counts: UnreadCounts,
        persister: EventPersister,
        gateway: Gateway,
    ) -> None:
        self.db = db
        self.clock = clock
        self.pushers = pushers
        self.counts = counts
        self.persister = persister
        self.gateway = gateway
        self._running = False
        self._again = False
        self._timer: Any = None
        self._timer_at: int | None = None
        self.sent = 0  # requests answered 2xx (tests, metrics)

    # --- queueing (reactor, in the evaluation hook) ----------------------------------------
    def on_notifications(self, notes: list[Notification]) -> None:
        now = self.clock.time_ms()
        rows = []
        for note in notes:
            for pusher in self.pushers.for_user(note.user_id):
                rows.append(
                    {
                        "pusher_id": pusher.id,
                        "notification": orjson.dumps(payload(note, pusher)).decode(),
                        "attempts": 0,
                        "next_ts": now,
                    }
                )
        if rows:
            d = self.persister.enqueue_extra(_insert, rows)
            d.addCallbacks(lambda _: self.kick(), lambda f: log.error("push queue: %s", f.value))

    # --- the worker ------------------------------------------------------------------------
    def kick(self) -> None:
        if self._running:
            self._again = True
            return
        self._running = True
        defer.ensureDeferred(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                self._again = False
                rows = await self.db.run(_due, self.clock.time_ms(), BATCH)
                done: list[int] = []
                retry: list[tuple[int, int, int]] = []
                sem = defer.DeferredSemaphore(CONCURRENCY)
                await defer.gatherResults(
                    [sem.run(self._send_deferred, r, done, retry) for r in rows],
                    consumeErrors=True,
                )
                next_ts = await self.db.run(_finish, done, retry)
                if len(rows) < BATCH and not self._again:
                    self._schedule(next_ts)
                    return
        except Exception:
            log.exception("push delivery failed; retrying in a minute")
            self._schedule(self.clock.time_ms() + 60_000)
        finally:
            self._running = False

    def _schedule(self, at: int | None) -> None:
        if at is None:
            return
        if self._timer is not None and self._timer.active():
            if self._timer_at is not None and self._timer_at <= at:
                return
            self._timer.cancel()
        delay = max(0.0, (at - self.clock.time_ms()) / 1000)
        self._timer_at = at
        self._timer = self.clock.call_later(delay, self.kick)

    async def _unread(self, user_id: str) -> int:
        total = 0
        for room_id in await self.db.read(_recent_rooms, user_id, COUNT_ROOMS):
            total += (await self.counts.counts(user_id, room_id)).notifications
        return total

    def _send_deferred(
        self, row: Any, done: list[int], retry: list[tuple[int, int, int]]
    ) -> defer.Deferred:
        return defer.ensureDeferred(self._send(row, done, retry))

    async def _send(self, row: Any, done: list[int], retry: list[tuple[int, int, int]]) -> None:
        row_id, pusher_id, text, attempts = row
        pusher = self.pushers.get(int(pusher_id))
        if pusher is None:
            done.append(row_id)  # the pusher was removed meanwhile
            return
        stored = orjson.loads(text)
        tweaks = stored.pop("tweaks", {})
        user_id = stored.pop("user_id", pusher.user_id)
        note = dict(stored)
        unread = await self._unread(user_id)
        if unread:
            note["counts"] = {"unread": unread}
        note["devices"] = [pusher.device(tweaks)]
        try:
            status, answer = await self.gateway.post(pusher.url, {"notification": note})
        except Exception as exc:  # noqa: BLE001 - any failure to reach the gateway is retried
            log.info("event=push_failed pusher=%d reason=%s", pusher.id, exc.__class__.__name__)
            status, answer = 0, None
        if 200 <= status < 300:
            self.sent += 1
            done.append(row_id)
            rejected = answer.get("rejected") if isinstance(answer, dict) else None
            if isinstance(rejected, list) and pusher.pushkey in rejected:
                log.info("event=pushkey_rejected pusher=%d", pusher.id)
                await self.pushers.remove([pusher.id])
            return
        if status in (0, 429) or status >= 500:
            attempts += 1
            if attempts >= MAX_ATTEMPTS:
                log.warning("event=push_given_up pusher=%d attempts=%d", pusher.id, attempts)
                done.append(row_id)
            else:
                retry.append((row_id, attempts, self.clock.time_ms() + backoff_ms(attempts)))
            return
        log.warning("event=push_refused pusher=%d status=%d", pusher.id, status)
        done.append(row_id)
