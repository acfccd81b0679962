"""``GET /_matrix/federation/v1/media/download/{mediaId}`` and ``/media/thumbnail/{mediaId}``
(spec: server-server API "Content Repository", ``content_repository.yaml``): this server's
media for another server, as ``multipart/mixed`` with exactly two parts -- a JSON metadata
object (always ``{}``) and the bytes with their ``Content-Type`` and
``Content-Disposition``."""

from __future__ import annotations

import secrets
from typing import Any

from federation.errors import InvalidParam, MatrixError
from federation.transport import endpoints as E
from node.http.server import Response
from node.media.headers import media_headers

from ..xmatrix_auth import serve

MAX_DIMENSION = 10_000


def multipart(content_type: str, headers: dict[str, str], data: bytes) -> Response:
    boundary = secrets.token_hex(16)
    part_headers = {"Content-Type": content_type}
    part_headers.update({k: v for k, v in headers.items()
                         if k.lower() in ("content-disposition",)})
    head = "".join(f"{k}: {v}\r\n" for k, v in part_headers.items())
    body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\n{head}\r\n").encode("latin-1") + data + \
        f"\r\n--{boundary}--\r\n".encode("ascii")
    return Response(200, body, f"multipart/mixed; boundary={boundary}")


def _dimension(req: Any, name: str) -> int:
    value = req.query_int(name)
    if value is None:
        raise MatrixError(f"Missing query parameter {name!r}", errcode="M_MISSING_PARAM")
    if not 0 < value <= MAX_DIMENSION:
        raise InvalidParam(f"{name} must be between 1 and {MAX_DIMENSION}")
    return value


def register(routes: Any, fctx: Any) -> None:
    media = fctx.media
    if media is None:
        return

    async def download(req: Any, origin: str, mediaId: str) -> Response:
        info, data = await media.download(fctx.server_name, mediaId)
        return multipart(info.content_type, media_headers(info.content_type,
                                                          info.upload_name), data)

    async def thumbnail(req: Any, origin: str, mediaId: str) -> Response:
        width, height = _dimension(req, "width"), _dimension(req, "height")
        method = req.query("method", "scale")
        if method not in ("crop", "scale"):
            raise InvalidParam("method must be 'crop' or 'scale'")
        result = await media.thumbnail(fctx.server_name, mediaId, width, height, method,
                                       req.query_bool("animated", False))
        ext = result.content_type.split("/", 1)[1]
        return multipart(result.content_type,
                         media_headers(result.content_type, f"thumbnail.{ext}",
                                       force_inline=True), result.data)

    serve(routes, E.MEDIA_DOWNLOAD, download)
    serve(routes, E.MEDIA_THUMBNAIL, thumbnail)
