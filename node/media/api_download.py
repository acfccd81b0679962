"""``GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]``
(client-server API "Content repository", authed-content-repo.yaml).

Serves the stored bytes with the upload's ``Content-Type`` and a ``Content-Disposition`` that is
``inline`` only for the spec's inline-safe types and always carries the upload's file name (or
the one in the path).  matrix-nio requests the bare form with a trailing slash, so that spelling
is accepted too.

Local files are streamed from disk (``FileResponse``): a download holds one chunk in memory,
not the file, however many run at once.  A remote server's media comes from the remote
media cache as bytes.
"""

from __future__ import annotations

from node.http.file_sender import FileResponse
from node.http.request import ApiRequest
from node.http.router import Router
from node.http.server import Response

from .headers import media_headers, served_content_type
from .service import MediaService

DOWNLOAD = "/_matrix/client/v1/media/download/{serverName}/{mediaId}"
# "timeout_ms": how long to wait for content not uploaded yet (spec default 20 s).
DEFAULT_TIMEOUT_MS = 20_000


def register(
    router: Router, media: MediaService, template: str = DOWNLOAD, *, auth: bool = True
) -> None:
    """The download routes under ``template`` (also the deprecated ``/_matrix/media/v3``
    form, ``api_legacy``)."""

    async def download(
        req: ApiRequest, serverName: str, mediaId: str, fileName: str | None = None
    ) -> Response | FileResponse:
        timeout_ms = req.query_int("timeout_ms", DEFAULT_TIMEOUT_MS, minimum=0) or 0
        info, body = await media.open_download(serverName, mediaId, timeout_ms)
        try:
            filename = fileName if fileName else info.upload_name
            content_type = served_content_type(info.content_type)
            headers = media_headers(info.content_type, filename)
        except BaseException:
            if not isinstance(body, bytes):
                body.file.close()
            raise
        if isinstance(body, bytes):
            return Response(200, body, content_type, headers)
        return FileResponse(200, body.file, body.size, content_type, headers)

    router.add("GET", template, download, auth=auth)
    router.add("GET", template + "/", download, auth=auth, name=template)
    router.add("GET", template + "/{fileName}", download, auth=auth)
