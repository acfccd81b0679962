"""Asynchronous uploads (client-server API "Content repository", ``content-repo.yaml``):
``POST /_matrix/media/v1/create`` reserves an ``mxc://`` URI, ``PUT
/_matrix/media/v3/upload/{serverName}/{mediaId}`` brings its content later.
https://spec.matrix.org/v1.16/client-server-api/#post_matrixmediav1create

The PUT answers, in the spec's order of reasons: 404 ``M_NOT_FOUND`` for an ID that was
not created here or has expired, 409 ``M_CANNOT_OVERWRITE_MEDIA`` once content is there,
403 ``M_FORBIDDEN`` for anyone but the creator; the content then goes through the same
checks as ``POST /upload`` (type, size limit, quota).  Downloads of a created ID wait for
its content (``pending.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from federation.errors import Forbidden, MatrixError, NotFound
from node import metrics
from node.http.request import ApiRequest
from node.http.router import Router
from schema.media import local_media

from .ids import is_valid_media_id, mxc_uri
from .pending import PendingUploads
from .service import MediaService

CREATE = "/_matrix/media/v1/create"
UPLOAD_TO = "/_matrix/media/v3/upload/{serverName}/{mediaId}"


class CannotOverwrite(MatrixError):
    errcode = "M_CANNOT_OVERWRITE_MEDIA"
    http_status = 409


def _uploaded(conn: Any, media_id: str) -> bool:
    found = conn.execute(select(local_media.c.media_id).where(local_media.c.media_id == media_id))
    return found.first() is not None


def register(router: Router, media: MediaService, clock: Any) -> PendingUploads:
    pending = PendingUploads(media.db, clock, media.config.max_pending_uploads)
    media.pending = pending
    media.body_limits[UPLOAD_TO] = media.config.max_upload_bytes

    async def create(req: ApiRequest) -> tuple[int, dict]:
        media_id, expires = await pending.create(req.user_id)
        return 200, {
            "content_uri": mxc_uri(media.server_name, media_id),
            "unused_expires_at": expires,
        }

    async def upload_to(req: ApiRequest, serverName: str, mediaId: str) -> tuple[int, dict]:
        if serverName != media.server_name or not is_valid_media_id(mediaId):
            raise NotFound("Unknown media ID")
        creator = await pending.creator(mediaId)
        if creator is None:
            if await media.db.run(_uploaded, mediaId):
                raise CannotOverwrite("Media already uploaded")
            raise NotFound("Unknown media ID")
        if creator != req.user_id:
            raise Forbidden("Only the user who created this media ID may upload to it")
        try:
            await media.upload(
                req.user_id,
                req.headers.get("content-type"),
                req.query("filename"),
                req.body,
                media_id=mediaId,
            )
        except IntegrityError:  # a concurrent upload to the same ID won
            raise CannotOverwrite("Media already uploaded") from None
        metrics.MEDIA_UPLOADED_BYTES.inc(len(req.body))
        await pending.finished(mediaId)
        return 200, {}

    router.add("POST", CREATE, create, rate_limited=True)
    router.add("PUT", UPLOAD_TO, upload_to, rate_limited=True)
    return pending
