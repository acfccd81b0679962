"""Media IDs created before their content (client-server API "Content repository":
``POST /_matrix/media/v1/create`` then ``PUT /_matrix/media/v3/upload/{serverName}/
{mediaId}``): https://spec.matrix.org/v1.16/client-server-api/#post_matrixmediav1create

A created ID is a ``media_pending`` row (creator, expiry) until its content arrives; then
the content is stored like any upload under that ID and the row goes.  Bounds the spec asks
for: an unused ID expires after ``UNUSED_EXPIRY_MS`` (24 hours, the recommended default),
and a user holds at most ``media.max_pending_uploads`` unexpired IDs (429
``M_LIMIT_EXCEEDED`` beyond).  Expired rows are deleted whenever IDs are created.

A download of an ID whose content has not arrived waits for it up to the request's
``timeout_ms`` (default 20 s, at most ``MAX_WAIT_MS``), then answers 504
``M_NOT_YET_UPLOADED``.  Waiting downloads are Deferreds in memory, at most
``MAX_WAITERS`` at once (more are answered 504 at once), woken by the upload or a timer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select
from twisted.internet import defer

from federation.errors import MatrixError
from schema.client_misc import media_pending

from .ids import new_media_id

UNUSED_EXPIRY_MS = 24 * 3600 * 1000
DEFAULT_WAIT_MS = 20_000
MAX_WAIT_MS = 60_000
MAX_WAITERS = 1000


class NotYetUploaded(MatrixError):
    errcode = "M_NOT_YET_UPLOADED"
    http_status = 504


def _create(conn: Any, user_id: str, now_ms: int, limit: int) -> tuple[str, int] | None:
    conn.execute(delete(media_pending).where(media_pending.c.expires_ts <= now_ms))
    held = conn.execute(
        select(func.count()).select_from(media_pending).where(media_pending.c.user_id == user_id)
    ).scalar()
    if int(held or 0) >= limit:
        return None
    media_id, expires = new_media_id(), now_ms + UNUSED_EXPIRY_MS
    conn.execute(
        insert(media_pending).values(media_id=media_id, user_id=user_id, expires_ts=expires)
    )
    return media_id, expires


def _creator(conn: Any, media_id: str, now_ms: int) -> str | None:
    return conn.execute(
        select(media_pending.c.user_id).where(
            media_pending.c.media_id == media_id, media_pending.c.expires_ts > now_ms
        )
    ).scalar()


def _finish(conn: Any, media_id: str) -> None:
    conn.execute(delete(media_pending).where(media_pending.c.media_id == media_id))


class PendingUploads:
    def __init__(self, db: Any, clock: Any, max_per_user: int) -> None:
        self.db = db
        self.clock = clock  # time_ms, call_later
        self.max_per_user = max_per_user
        self._waiters: dict[str, list[defer.Deferred]] = {}
        self._waiting = 0

    async def create(self, user_id: str) -> tuple[str, int]:
        """A new media ID for ``user_id`` and the time it expires unused."""
        made = await self.db.run(_create, user_id, self.clock.time_ms(), self.max_per_user)
        if made is None:
            raise MatrixError(
                f"At most {self.max_per_user} media uploads may be pending at once",
                errcode="M_LIMIT_EXCEEDED",
                http_status=429,
            )
        return made

    async def creator(self, media_id: str) -> str | None:
        """Who created the unexpired pending ID ``media_id`` (None: none such)."""
        return await self.db.run(_creator, media_id, self.clock.time_ms())

    async def finished(self, media_id: str) -> None:
        """The content of ``media_id`` is stored: forget the row, wake waiting downloads."""
        await self.db.run(_finish, media_id)
        for d in self._waiters.pop(media_id, []):
            if not d.called:
                d.callback(True)

    async def wait(self, media_id: str, timeout_ms: int | None) -> bool:
        """Wait for the content of pending ``media_id``: False if it is not pending (the
        caller answers 404), True once it arrives; 504 ``M_NOT_YET_UPLOADED`` on timeout."""
        if await self.creator(media_id) is None:
            return False
        wait_ms = DEFAULT_WAIT_MS if timeout_ms is None else max(0, min(timeout_ms, MAX_WAIT_MS))
        if wait_ms == 0 or self._waiting >= MAX_WAITERS:
            raise NotYetUploaded("Content has not yet been uploaded")
        d: defer.Deferred = defer.Deferred()
        self._waiters.setdefault(media_id, []).append(d)
        self._waiting += 1

        def expire() -> None:
            if not d.called:
                d.callback(False)

        timer = self.clock.call_later(wait_ms / 1000, expire)
        try:
            arrived = await d
        finally:
            self._waiting -= 1
            waiters = self._waiters.get(media_id)
            if waiters is not None and d in waiters:
                waiters.remove(d)
                if not waiters:
                    del self._waiters[media_id]
            if timer.active():
                timer.cancel()
        if not arrived:
            raise NotYetUploaded("Content has not yet been uploaded")
        return True
