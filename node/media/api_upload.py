"""``POST /_matrix/media/v3/upload`` (client-server API "Content repository", content-repo.yaml).

The body is the file's bytes; ``Content-Type`` is its type and ``?filename=`` its name.  The
route's body limit is ``max_upload_bytes`` (``MediaService.body_limits``); bigger bodies get
413 ``M_TOO_LARGE`` before the handler runs, quota overruns 403 ``M_FORBIDDEN``.
"""

from __future__ import annotations

from node import metrics
from node.http.request import ApiRequest
from node.http.router import Router

from .service import UPLOAD_ROUTE, MediaService


def register(router: Router, media: MediaService) -> None:
    async def upload(req: ApiRequest) -> tuple[int, dict]:
        uri = await media.upload(
            req.user_id, req.headers.get("content-type"), req.query("filename"), req.body
        )
        metrics.MEDIA_UPLOADED_BYTES.inc(len(req.body))
        return 200, {"content_uri": uri}

    router.add("POST", UPLOAD_ROUTE, upload, rate_limited=True)
