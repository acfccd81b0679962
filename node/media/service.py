"""MediaService: the content repository's logic (client-server API "Content repository").

Upload stores bytes content-addressed on disk and a ``local_media`` row under a fresh random media
ID; download looks the row up and opens the file, which the HTTP layer streams
(``node.http.file_sender``: memory per download is one chunk, whatever the file size);
thumbnail reads the (small) bytes.  Limits (from ``MediaConfig``):
``max_upload_bytes`` (413 ``M_TOO_LARGE``), ``per_user_quota_bytes`` — the total size of one user's
uploads (403 ``M_FORBIDDEN``, as "Security considerations" prescribes), and
``max_thumbnail_pixels`` (413 ``M_TOO_LARGE`` on thumbnails: pixels to decode, see
thumbnailer.py), and ``thumbnail_memory_bytes`` / ``thumbnail_concurrency`` /
``thumbnail_queue``, the work budget all thumbnail decoding shares (budget.py; 429
``M_LIMIT_EXCEEDED`` when the queue is full).  Thumbnails are made for the configured
``thumbnail_sizes`` plus one full-size box only, so their number per media item is bounded.

Blocking work — hashing, file I/O, Pillow — runs through the injected ``offload`` on a worker
thread, DB work through ``db.run``; nothing blocks the reactor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, BinaryIO, Callable, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from twisted.internet import defer

from federation.errors import Forbidden, MatrixError, NotFound
from schema.media import local_media, media_thumbnails

from . import thumbnailer
from .budget import WorkBudget
from .headers import clean_content_type, clean_filename
from .ids import is_valid_media_id, is_valid_server_name, mxc_uri, new_media_id
from .store import MediaStore

Offload = Callable[..., Awaitable[Any]]

UPLOAD_ROUTE = "/_matrix/media/v3/upload"


class PendingContent(Protocol):
    """Media IDs created before their content (``pending.PendingUploads``)."""

    async def wait(self, media_id: str, timeout_ms: int) -> bool: ...


class RemoteMediaSource(Protocol):
    """Other servers' media (server-server API "Content Repository"): the federation's
    downloader with its bounded cache.  It lives in ``node.federation``, above media in the
    layer order, and is handed over once with ``MediaService.attach_remote``; until then
    media of other servers is 404 ``M_NOT_FOUND``.  Failures are ``MatrixError`` (404, 502)."""

    async def download(self, server_name: str, media_id: str) -> tuple[MediaInfo, bytes]: ...


class TooLarge(MatrixError):
    errcode = "M_TOO_LARGE"
    http_status = 413


class TooLargeToThumbnail(TooLarge):
    """Spec: 413 "The local content is too large for the server to thumbnail"."""


class CannotThumbnail(MatrixError):
    """Spec: 400 "... or the server cannot thumbnail the content"."""


# Refusals are decided by the bytes alone, so they are remembered (per thumbnail key, this
# many at most): a hostile file costs its header parsing - which for a GIF of a million tiny
# frames is seconds of CPU - once per box, not once per request.
MAX_REMEMBERED_REFUSALS = 4096


@dataclass(frozen=True)
class MediaInfo:
    media_id: str
    user_id: str
    content_type: str
    upload_name: str | None
    size: int
    sha256: str
    created_ts: int


@dataclass(frozen=True)
class MediaFile:
    """A stored file opened for a download and its size.  The caller owns ``file``."""

    file: BinaryIO
    size: int


@dataclass(frozen=True)
class ThumbnailResult:
    content_type: str
    data: bytes


def _row_to_info(row: Any) -> MediaInfo:
    return MediaInfo(
        row.media_id,
        row.user_id,
        row.content_type,
        row.upload_name,
        row.size,
        row.sha256,
        row.created_ts,
    )


# --- DB transactions (run on the DB thread) ------------------------------------------------
def _usage_txn(conn: Any, user_id: str) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(local_media.c.size), 0)).where(
                local_media.c.user_id == user_id
            )
        ).scalar_one()
    )


def _insert_media_txn(conn: Any, row: dict, quota: int) -> None:
    # Re-checked inside the transaction that inserts, so the quota holds across the upload.
    if _usage_txn(conn, row["user_id"]) + row["size"] > quota:
        raise Forbidden("Media quota exceeded: delete some uploads or ask the school office")
    conn.execute(insert(local_media).values(**row))


def _get_media_txn(conn: Any, media_id: str) -> MediaInfo | None:
    row = conn.execute(select(local_media).where(local_media.c.media_id == media_id)).first()
    return _row_to_info(row) if row is not None else None


def _get_thumbnail_txn(conn: Any, key: tuple) -> tuple[str, str] | None:
    media_id, width, height, method, animated = key
    t = media_thumbnails.c
    row = conn.execute(
        select(t.content_type, t.sha256).where(
            t.media_id == media_id,
            t.width == width,
            t.height == height,
            t.method == method,
            t.animated == animated,
        )
    ).first()
    return (row.content_type, row.sha256) if row is not None else None


def _insert_thumbnail_txn(conn: Any, row: dict) -> None:
    conn.execute(insert(media_thumbnails).values(**row))


class MediaService:
    def __init__(
        self,
        *,
        server_name: str,
        config: Any,
        db: Any,
        store: MediaStore,
        clock: Any,
        offload: Offload,
    ) -> None:
        self.server_name = server_name
        self.config = config  # node.config.MediaConfig
        self.db = db
        self.store = store
        self.clock = clock
        self.offload = offload
        # Route name -> request body limit, for ApiResource(body_limits=...) in node/app.py.
        self.body_limits: dict[str, int] = {UPLOAD_ROUTE: config.max_upload_bytes}
        self._thumbnail_inflight: dict[tuple, list[defer.Deferred]] = {}
        # Created-but-not-uploaded media IDs: downloads wait for them (set by the wiring).
        self.pending: PendingContent | None = None
        # Other servers' media; None until the federation attaches it (attach_remote).
        self.remote: RemoteMediaSource | None = None
        self._refused: OrderedDict[tuple, tuple[type[MatrixError], str]] = OrderedDict()
        # Decoding is admitted by estimated memory, a few jobs at a time (budget.py).
        self._budget = WorkBudget(
            capacity_bytes=config.thumbnail_memory_bytes,
            slots=config.thumbnail_concurrency,
            max_waiting=config.thumbnail_queue,
        )

    def attach_remote(self, remote: RemoteMediaSource) -> None:
        """Called once by the federation's wiring: downloads of other servers' media."""
        self.remote = remote

    # --- config ---------------------------------------------------------------------------
    def config_json(self) -> dict:
        return {"m.upload.size": self.config.max_upload_bytes}

    # --- upload ---------------------------------------------------------------------------
    async def usage(self, user_id: str) -> int:
        """Total bytes ``user_id`` has uploaded (what the quota counts)."""
        return await self.db.run(_usage_txn, user_id)

    async def upload(
        self,
        user_id: str,
        content_type: str | None,
        filename: str | None,
        data: bytes,
        media_id: str | None = None,
    ) -> str:
        """Store ``data`` for ``user_id``; return its ``mxc://`` URI.  ``media_id``: an ID
        reserved earlier with ``POST /media/v1/create`` (else a fresh one)."""
        size = len(data)
        if size > self.config.max_upload_bytes:
            raise TooLarge(f"Cannot upload files larger than {self.config.max_upload_bytes} bytes")
        quota = self.config.per_user_quota_bytes
        # Cheap early refusal before writing bytes to disk; the insert checks again.
        if await self.usage(user_id) + size > quota:
            raise Forbidden("Media quota exceeded: delete some uploads or ask the school office")
        sha256 = await self.offload(self.store.put, data)
        media_id = media_id or new_media_id()
        await self.db.run(
            _insert_media_txn,
            {
                "media_id": media_id,
                "user_id": user_id,
                "content_type": clean_content_type(content_type),
                "upload_name": clean_filename(filename),
                "size": size,
                "sha256": sha256,
                "created_ts": self.clock.time_ms(),
            },
            quota,
        )
        return mxc_uri(self.server_name, media_id)

    # --- lookup / download ----------------------------------------------------------------
    async def get_local_media(
        self, server_name: str, media_id: str, timeout_ms: int = 0
    ) -> MediaInfo:
        """The row for ``mxc://server_name/media_id`` (404 ``M_NOT_FOUND`` if unknown).  A
        created ID whose content has not arrived is waited for up to ``timeout_ms``, then
        504 ``M_NOT_YET_UPLOADED``."""
        if not is_valid_server_name(server_name) or not is_valid_media_id(media_id):
            raise NotFound("Media not found")
        if server_name != self.server_name:
            raise NotFound("Media from other servers is not available on this server yet")
        info = await self.db.run(_get_media_txn, media_id)
        if info is None and self.pending is not None:
            if await self.pending.wait(media_id, timeout_ms):
                info = await self.db.run(_get_media_txn, media_id)
        if info is None:
            raise NotFound("Media not found")
        return info

    async def open_download(
        self, server_name: str, media_id: str, timeout_ms: int = 0
    ) -> tuple[MediaInfo, MediaFile | bytes]:
        """What ``GET .../download/{serverName}/{mediaId}`` serves: a local file opened for
        streaming (the caller must close it), or a remote server's bytes (from the remote
        media cache, whose size is bounded there)."""
        remote = self.remote
        if (
            remote is not None
            and server_name != self.server_name
            and is_valid_server_name(server_name)
            and is_valid_media_id(media_id)
        ):
            return await remote.download(server_name, media_id)
        info = await self.get_local_media(server_name, media_id, timeout_ms)
        opened = await self.offload(self.store.open_sized, info.sha256)
        if opened is None:
            raise NotFound("Media content is missing from the store")
        return info, MediaFile(*opened)

    # --- thumbnails -----------------------------------------------------------------------
    async def thumbnail(
        self,
        server_name: str,
        media_id: str,
        width: int,
        height: int,
        method: str,
        animated: bool,
        timeout_ms: int = 0,
    ) -> ThumbnailResult:
        info = await self.get_local_media(server_name, media_id, timeout_ms)
        box_w, box_h = thumbnailer.choose_box(width, height, self.config.thumbnail_sizes)
        key = (media_id, box_w, box_h, method, animated)
        refused = self._refused.get(key)
        if refused is not None:
            raise refused[0](refused[1])  # a fresh error: no traceback piling up
        cached = await self.db.run(_get_thumbnail_txn, key)
        if cached is not None:
            data = await self.offload(self.store.get, cached[1])
            if data is not None:
                return ThumbnailResult(cached[0], data)
        # Identical concurrent requests share one generation (single flight).
        waiters = self._thumbnail_inflight.get(key)
        if waiters is not None:
            d: defer.Deferred = defer.Deferred()
            waiters.append(d)
            return await d
        self._thumbnail_inflight[key] = []
        try:
            result = await self._generate(info, key)
        except BaseException as exc:
            if isinstance(exc, (TooLargeToThumbnail, CannotThumbnail)):
                self._refused[key] = (type(exc), exc.message)
                if len(self._refused) > MAX_REMEMBERED_REFUSALS:
                    self._refused.popitem(last=False)
            for d in self._thumbnail_inflight.pop(key, []):
                d.errback(exc)
            raise
        for d in self._thumbnail_inflight.pop(key, []):
            d.callback(result)
        return result

    async def _generate(self, info: MediaInfo, key: tuple) -> ThumbnailResult:
        media_id, box_w, box_h, method, animated = key
        # The header alone says what decoding will cost (or that the original is the answer);
        # the pixels are decoded only once the work budget admits the job.
        plan = await self.offload(self._plan_blocking, info.sha256, box_w, box_h, method, animated)
        if plan.serve_original:
            result, sha256 = await self.offload(
                self._generate_blocking, info.sha256, box_w, box_h, method, animated
            )
        else:
            result, sha256 = await self._budget.run(
                plan.memory_bytes + info.size,
                lambda: self.offload(
                    self._generate_blocking, info.sha256, box_w, box_h, method, animated
                ),
            )
        try:
            await self.db.run(
                _insert_thumbnail_txn,
                {
                    "media_id": media_id,
                    "width": box_w,
                    "height": box_h,
                    "method": method,
                    "animated": animated,
                    "content_type": result.content_type,
                    "sha256": sha256,
                    "size": len(result.data),
                },
            )
        except IntegrityError:
            pass  # another node process generated it meanwhile: the same bytes, keep its row
        return result

    def _plan_blocking(
        self, source_sha256: str, box_w: int, box_h: int, method: str, animated: bool
    ) -> thumbnailer.Plan:
        fh = self.store.open(source_sha256)
        if fh is None:
            raise NotFound("Media content is missing from the store")
        with fh:
            return _refusals_as_errors(
                thumbnailer.plan,
                fh,
                box_w,
                box_h,
                method,
                animated=animated,
                max_pixels=self.config.max_thumbnail_pixels,
            )

    def _generate_blocking(
        self, source_sha256: str, box_w: int, box_h: int, method: str, animated: bool
    ) -> tuple[ThumbnailResult, str]:
        source = self.store.get(source_sha256)
        if source is None:
            raise NotFound("Media content is missing from the store")
        pixels = self.config.max_thumbnail_pixels
        thumb = _refusals_as_errors(
            thumbnailer.make_thumbnail,
            source,
            box_w,
            box_h,
            method,
            animated=animated,
            max_pixels=pixels,
        )
        if thumb is None:
            # The original is small enough: serve it, typed by what Pillow found, not the
            # uploader's claim.
            content_type = thumbnailer.describe(source, pixels)[0]
            assert content_type is not None  # make_thumbnail only returns None for these
            return ThumbnailResult(content_type, source), source_sha256
        return ThumbnailResult(thumb.content_type, thumb.data), self.store.put(thumb.data)


def _refusals_as_errors(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The thumbnailer's refusals as the spec's answers: 413 ``M_TOO_LARGE`` ("The local
    content is too large for the server to thumbnail") and 400 for content it cannot read."""
    try:
        return fn(*args, **kwargs)
    except thumbnailer.TooLargeToThumbnail:
        raise TooLargeToThumbnail("Content is too large to thumbnail") from None
    except thumbnailer.CannotThumbnail:
        raise CannotThumbnail("Cannot generate thumbnails for the requested content") from None
