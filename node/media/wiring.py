"""Composition of the media area: ``wire(ctx, accounts) -> MediaService``.

Builds the content-addressed store under ``config.media_dir``, the service (blocking work on the
reactor's thread pool) and registers the routes.  ``node/app.py`` must pass
``MediaService.body_limits`` to ``ApiResource(body_limits=...)`` so uploads may exceed the
default request body limit.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import threads

from federation.transport.ip_ranges import AddressFilter

from . import api_config, api_create, api_download, api_legacy, api_thumbnail, api_upload
from .preview import UrlPreviews
from .preview_fetch import WebFetcher
from .service import MediaService
from .store import MediaStore


def wire(ctx: Any, accounts: Any = None) -> MediaService:
    reactor = ctx.reactor

    def offload(fn: Any, *args: Any) -> Any:
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args)

    service = MediaService(
        server_name=ctx.server_name,
        config=ctx.config.media,
        db=ctx.db,
        store=MediaStore(ctx.config.media_dir),
        clock=ctx.clock,
        offload=offload,
    )
    for module in (api_upload, api_download, api_thumbnail, api_config):
        module.register(ctx.router, service)
    api_legacy.register(ctx.router, service, _url_previews(ctx))  # /_matrix/media/v3 paths
    api_create.register(ctx.router, service, ctx.clock)  # create now, upload later
    return service


def _url_previews(ctx: Any) -> UrlPreviews | None:
    """The URL previewer when ``media.url_previews`` is on (it fetches pages users name,
    only at addresses its own ip_range settings allow)."""
    cfg = ctx.config.media
    if not cfg.url_previews:
        return None
    address_filter = AddressFilter(
        cfg.url_preview_ip_range_blacklist,
        cfg.url_preview_ip_range_whitelist,
        setting="media.url_preview_ip_range",
    )
    return UrlPreviews(
        WebFetcher(ctx.reactor, address_filter),
        ctx.clock,
        rate_limits=ctx.config.rate_limits.enabled,
    )
