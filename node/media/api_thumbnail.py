"""``GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}``
(client-server API "Content repository" > "Thumbnails", authed-content-repo.yaml).

``width`` and ``height`` are required positive integers, ``method`` is ``crop`` or ``scale``
(default ``scale``), ``animated`` a boolean.  Answers ``inline`` with an image type from the
spec's list; content Pillow cannot read is 400, images over the pixel limit 413 ``M_TOO_LARGE``.
"""

from __future__ import annotations

from federation.errors import InvalidParam
from node.http.request import ApiRequest, MissingParam
from node.http.router import Router
from node.http.server import Response

from .api_download import DEFAULT_TIMEOUT_MS
from .headers import media_headers
from .service import MediaService
from .thumbnailer import MAX_DIMENSION, METHODS

THUMBNAIL = "/_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}"


def _dimension(req: ApiRequest, name: str) -> int:
    value = req.query_int(name)
    if value is None:
        raise MissingParam(f"Missing query parameter {name!r}")
    if not 0 < value <= MAX_DIMENSION:
        raise InvalidParam(f"{name} must be between 1 and {MAX_DIMENSION}")
    return value


def register(
    router: Router, media: MediaService, template: str = THUMBNAIL, *, auth: bool = True
) -> None:
    """The thumbnail route at ``template`` (also the deprecated ``/_matrix/media/v3`` form,
    ``api_legacy``)."""

    async def thumbnail(req: ApiRequest, serverName: str, mediaId: str) -> Response:
        width, height = _dimension(req, "width"), _dimension(req, "height")
        method = req.query("method", "scale")
        if method not in METHODS:
            raise InvalidParam("method must be 'crop' or 'scale'")
        animated = req.query_bool("animated", False)
        timeout_ms = req.query_int("timeout_ms", DEFAULT_TIMEOUT_MS, minimum=0) or 0
        result = await media.thumbnail(
            serverName, mediaId, width, height, method, animated, timeout_ms
        )
        ext = result.content_type.split("/", 1)[1]
        return Response(
            200,
            result.data,
            result.content_type,
            media_headers(result.content_type, f"thumbnail.{ext}", force_inline=True),
        )

    router.add("GET", template, thumbnail, auth=auth)
