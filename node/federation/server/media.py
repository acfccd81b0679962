"""``GET /_matrix/federation/v1/media/download/{mediaId}`` and ``/media/thumbnail/{mediaId}``
(spec: server-server API "Content Repository", ``content_repository.yaml``): this server's
media for another server, as ``multipart/mixed`` with exactly two parts -- a JSON metadata
object (always ``{}``) and the bytes with their ``Content-Type`` and
``Content-Disposition``.

A download streams the file from disk between the multipart framing (``FileResponse``), so
it holds one chunk in memory, not the file; thumbnails are small and sent from memory."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from federation.errors import InvalidParam, MatrixError
from federation.transport import endpoints as E
from node.http.file_sender import FileResponse
from node.http.server import Response
from node.media.headers import media_headers

from ..xmatrix_auth import serve

if TYPE_CHECKING:
    from node.federation.context import FederationContext

MAX_DIMENSION = 10_000


def multipart_frame(content_type: str, headers: dict[str, str]) -> tuple[str, bytes, bytes]:
    """(response Content-Type, bytes before the media, bytes after it) of the two-part
    ``multipart/mixed`` answer; the media's own bytes go in between."""
    boundary = secrets.token_hex(16)
    part_headers = {"Content-Type": content_type}
    part_headers.update({k: v for k, v in headers.items() if k.lower() in ("content-disposition",)})
    head = "".join(f"{k}: {v}\r\n" for k, v in part_headers.items())
    prefix = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\n{head}\r\n"
    ).encode("latin-1")
    suffix = f"\r\n--{boundary}--\r\n".encode("ascii")
    return f"multipart/mixed; boundary={boundary}", prefix, suffix


def multipart(content_type: str, headers: dict[str, str], data: bytes) -> Response:
    response_type, prefix, suffix = multipart_frame(content_type, headers)
    return Response(200, prefix + data + suffix, response_type)


def _dimension(req: Any, name: str) -> int:
    value = req.query_int(name)
    if value is None:
        raise MatrixError(f"Missing query parameter {name!r}", errcode="M_MISSING_PARAM")
    if not 0 < value <= MAX_DIMENSION:
        raise InvalidParam(f"{name} must be between 1 and {MAX_DIMENSION}")
    return value


def register(routes: Any, fctx: FederationContext) -> None:
    media = fctx.media
    if media is None:
        return

    async def download(req: Any, origin: str, mediaId: str) -> Response | FileResponse:
        info, body = await media.open_download(fctx.server_name, mediaId)
        headers = media_headers(info.content_type, info.upload_name)
        if isinstance(body, bytes):
            return multipart(info.content_type, headers, body)
        response_type, prefix, suffix = multipart_frame(info.content_type, headers)
        return FileResponse(200, body.file, body.size, response_type, prefix=prefix, suffix=suffix)

    async def thumbnail(req: Any, origin: str, mediaId: str) -> Response:
        width, height = _dimension(req, "width"), _dimension(req, "height")
        method = req.query("method", "scale")
        if method not in ("crop", "scale"):
            raise InvalidParam("method must be 'crop' or 'scale'")
        result = await media.thumbnail(
            fctx.server_name, mediaId, width, height, method, req.query_bool("animated", False)
        )
        ext = result.content_type.split("/", 1)[1]
        return multipart(
            result.content_type,
            media_headers(result.content_type, f"thumbnail.{ext}", force_inline=True),
            result.data,
        )

    serve(routes, E.MEDIA_DOWNLOAD, download)
    serve(routes, E.MEDIA_THUMBNAIL, thumbnail)
