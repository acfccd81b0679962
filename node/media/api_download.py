"""``GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]``
(client-server API "Content repository", authed-content-repo.yaml).

Serves the stored bytes with the upload's ``Content-Type`` and a ``Content-Disposition`` that is
``inline`` only for the spec's inline-safe types and always carries the upload's file name (or
the one in the path).  matrix-nio requests the bare form with a trailing slash, so that spelling
is accepted too.
"""

from __future__ import annotations

from node.http.request import ApiRequest
from node.http.router import Router
from node.http.server import Response

from .headers import media_headers, served_content_type
from .service import MediaService

DOWNLOAD = "/_matrix/client/v1/media/download/{serverName}/{mediaId}"


def register(router: Router, media: MediaService) -> None:
    async def download(req: ApiRequest, serverName: str, mediaId: str,
                       fileName: str | None = None) -> Response:
        info, data = await media.download(serverName, mediaId)
        filename = fileName if fileName else info.upload_name
        return Response(200, data, served_content_type(info.content_type),
                        media_headers(info.content_type, filename))

    router.add("GET", DOWNLOAD, download)
    router.add("GET", DOWNLOAD + "/", download, name=DOWNLOAD)
    router.add("GET", DOWNLOAD + "/{fileName}", download)
