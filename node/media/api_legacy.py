"""The deprecated ``/_matrix/media/v3`` paths (client-server API "Content repository",
``content-repo.yaml``) and URL previews.
https://spec.matrix.org/v1.16/client-server-api/#content-repository

* ``GET /_matrix/media/v3/config``: the same answer as ``/_matrix/client/v1/media/config``.
* ``GET /_matrix/media/v3/download/...`` and ``.../thumbnail/...``: unauthenticated.  The spec
  asks servers to "freeze" them: media uploaded after the freeze only through the
  authenticated endpoints.  Parta never served them, so all its media is "after": with
  ``media.legacy_unauthenticated: false`` (the default) they answer 404 ``M_NOT_FOUND``, as
  the spec allows (changed in v1.11); ``true`` serves them with the authenticated
  endpoints' handlers, for a school whose clients predate authenticated media (anyone who
  knows an ``mxc://`` URI can then fetch it).
* ``GET /_matrix/client/v1/media/preview_url`` and the deprecated
  ``/_matrix/media/v3/preview_url``: with ``media.url_previews`` the page's Open Graph data
  (``preview.py``); off (the default: fetching URLs users name is a server-side request
  surface a school decides on) 404 ``M_UNRECOGNIZED``, which clients take as "no previews".
"""

from __future__ import annotations

from federation.errors import MatrixError, NotFound
from node.http.request import ApiRequest, MissingParam
from node.http.router import Router

from . import api_download, api_thumbnail
from .preview import UrlPreviews
from .service import MediaService

LEGACY = "/_matrix/media/v3"
DOWNLOAD = LEGACY + "/download/{serverName}/{mediaId}"
THUMBNAIL = LEGACY + "/thumbnail/{serverName}/{mediaId}"


def register(router: Router, media: MediaService, previews: UrlPreviews | None = None) -> None:
    async def config(req: ApiRequest) -> tuple[int, dict]:
        return 200, media.config_json()

    async def frozen(req: ApiRequest, **_params: str) -> tuple[int, dict]:
        raise NotFound("Unauthenticated media is not served: use /_matrix/client/v1/media")

    async def no_previews(req: ApiRequest) -> tuple[int, dict]:
        raise MatrixError(
            "URL previews are not available on this server",
            errcode="M_UNRECOGNIZED",
            http_status=404,
        )

    router.add("GET", LEGACY + "/config", config)
    if media.config.legacy_unauthenticated:
        api_download.register(router, media, DOWNLOAD, auth=False)
        api_thumbnail.register(router, media, THUMBNAIL, auth=False)
    else:
        router.add("GET", DOWNLOAD, frozen, auth=False)
        router.add("GET", DOWNLOAD + "/", frozen, auth=False, name=DOWNLOAD)
        router.add("GET", DOWNLOAD + "/{fileName}", frozen, auth=False)
        router.add("GET", THUMBNAIL, frozen, auth=False)

    async def preview_url(req: ApiRequest) -> tuple[int, dict]:
        assert previews is not None
        url = req.query("url")
        if not url:
            raise MissingParam("Missing 'url' parameter")
        return 200, await previews.preview(req.user_id, url)

    handler = no_previews if previews is None else preview_url
    router.add("GET", LEGACY + "/preview_url", handler, rate_limited=True)
    router.add("GET", "/_matrix/client/v1/media/preview_url", handler, rate_limited=True)
