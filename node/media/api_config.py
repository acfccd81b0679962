"""``GET /_matrix/client/v1/media/config`` (client-server API "Content repository",
authed-content-repo.yaml): ``{"m.upload.size": max_upload_bytes}``."""

from __future__ import annotations

from node.http.request import ApiRequest
from node.http.router import Router

from .service import MediaService


def register(router: Router, media: MediaService) -> None:
    async def config(req: ApiRequest) -> tuple[int, dict]:
        return 200, media.config_json()

    router.add("GET", "/_matrix/client/v1/media/config", config)
