"""Fetching a web page for a URL preview, without becoming a way into the school's network.

A preview's URL comes from a user, so every connection goes through the address filter of
outbound federation (``federation/transport/ip_ranges.py``, checked on each resolved
address right before connecting, so DNS rebinding cannot get past it), with the
``media.url_preview_ip_range_*`` settings; every redirect (at most ``MAX_REDIRECTS``) is a
new request through the same filter.  The whole fetch is bounded by ``timeout_s``, only
``http``/``https`` URLs are followed, and at most ``max_bytes`` of a page are read (the
rest is not downloaded: a page's ``<head>`` comes first).  Connections are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

from twisted.internet import defer
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers

from federation.transport.ip_ranges import AddressFilter

# The filtered TCP endpoint of outbound federation (resolve once, check every address).
from federation.transport.web_client import BodyHead, CheckedWebEndpoints

MAX_REDIRECTS = 3
MAX_URL_CHARS = 2000
REDIRECTS = (301, 302, 303, 307, 308)


class FetchFailed(Exception):
    """The page could not be fetched (the reason is for the log, not for the client)."""


@dataclass(frozen=True)
class FetchedPage:
    url: str  # after redirects
    content_type: str
    body: bytes  # at most max_bytes


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host and no credentials, in ASCII
    (clients send non-ASCII characters percent-encoded), else ``FetchFailed`` (callers turn
    it into 400)."""
    if (
        len(url) > MAX_URL_CHARS
        or not url.isascii()
        or any(ord(c) < 0x21 or c == "\x7f" for c in url)
    ):
        raise FetchFailed("URL too long, not ASCII, or with spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchFailed("only absolute http and https URLs are previewed")
    if parts.username is not None or parts.password is not None:
        raise FetchFailed("URLs with credentials are not previewed")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise FetchFailed("invalid port") from None
    return url


class WebFetcher:
    def __init__(
        self,
        reactor: Any,
        address_filter: AddressFilter,
        *,
        timeout_s: float = 10.0,
        max_bytes: int = 1024 * 1024,
    ) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent.usingEndpointFactory(
            reactor,
            CheckedWebEndpoints(reactor, address_filter, timeout_s, "url_preview"),
            pool=pool,
        )

    async def fetch(self, url: str) -> FetchedPage:
        d = defer.ensureDeferred(self._fetch(check_url(url)))
        d.addTimeout(self.timeout_s, self.reactor)
        try:
            return await d
        except FetchFailed:
            raise
        except Exception as exc:  # refused address, DNS, TLS, timeout, protocol errors
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from None

    async def _fetch(self, url: str) -> FetchedPage:
        headers = Headers(
            {
                b"User-Agent": [b"Parta link preview"],
                b"Accept": [b"text/html, application/xhtml+xml;q=0.9, */*;q=0.1"],
            }
        )
        for _ in range(MAX_REDIRECTS + 1):
            response = await self.agent.request(b"GET", url.encode("ascii", "strict"), headers)
            if response.code in REDIRECTS:
                location = response.headers.getRawHeaders(b"location")
                await self._drain(response, 0)
                if not location:
                    raise FetchFailed(f"redirect {response.code} without Location")
                url = check_url(urljoin(url, location[0].decode("latin-1")))
                continue
            if response.code != 200:
                await self._drain(response, 0)
                raise FetchFailed(f"HTTP {response.code}")
            types = response.headers.getRawHeaders(b"content-type") or [b""]
            body = await self._drain(response, self.max_bytes)
            return FetchedPage(url, types[0].decode("latin-1"), body)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    async def _drain(response: Any, limit: int) -> bytes:
        head = BodyHead(limit)
        response.deliverBody(head)
        if limit == 0 and not head.done.called:
            # Nothing wanted: stop the body and close (the pool keeps no connections).
            transport = head.transport
            if transport is not None:
                cast(Any, transport).stopProducing()
            head.finish()
        return await head.done
