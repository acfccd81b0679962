"""URL previews (client-server API ``GET /_matrix/client/v1/media/preview_url`` and the
deprecated ``/_matrix/media/v3/preview_url``):
https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1mediapreview_url

Off unless ``media.url_previews`` is set (the node then fetches pages its users name; see
``preview_fetch.py`` for how that stays out of private networks).  The answer is the page's
Open Graph data: ``og:*`` ``<meta>`` tags, with ``<title>`` and ``<meta name=description>``
as fallbacks for ``og:title`` and ``og:description``.  Images are not fetched (``og:image``
is left out): a preview never makes the node download and store what a page points to.

Bounds: values are cut to ``MAX_VALUE_CHARS`` and at most ``MAX_TAGS`` tags are read;
answers (and failures, shorter) are cached per URL (``CACHE_SIZE`` URLs, ``CACHE_MS``), a
URL being fetched is fetched once for every client asking, at most ``MAX_FETCHING``
fetches run at once (429 beyond) and each user may ask ``PREVIEWS_BURST`` at once, then
one every ``1 / PREVIEWS_PER_SECOND`` seconds.  Every failure to fetch or read a page is
the same 404 ``M_NOT_FOUND``, so previews tell a prober nothing about which hosts or ports
answer.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from html.parser import HTMLParser
from typing import Any, Protocol

from twisted.internet import defer

from federation.errors import MatrixError, NotFound

from ..ratelimit import RateLimiter
from .preview_fetch import FetchedPage, FetchFailed, check_url

MAX_VALUE_CHARS = 1000
MAX_TAGS = 50
CACHE_SIZE = 1000
CACHE_MS = 3600 * 1000
FAILURE_CACHE_MS = 5 * 60 * 1000
MAX_FETCHING = 8
PREVIEWS_BURST = 10
PREVIEWS_PER_SECOND = 0.2
HTML_TYPES = ("text/html", "application/xhtml+xml")
KEPT = ("og:title", "og:description", "og:site_name", "og:url", "og:type", "og:locale")

_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)


class PageFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedPage: ...


class _OpenGraph(HTMLParser):
    """Collects ``og:*`` meta tags, the title and the description of a page's head."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title: str | None = None
        self.description: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []
        self._tags = 0
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "title" and self.title is None:
            self._in_title = True
        elif tag == "meta":
            self._tags += 1
            if self._tags > MAX_TAGS:
                self.done = True
                return
            a = {k.lower(): v for k, v in attrs if v is not None}
            key = a.get("property") or a.get("name") or ""
            content = a.get("content")
            if content is None:
                return
            key = key.lower()
            if key.startswith("og:") and key not in self.og:
                self.og[key] = content[:MAX_VALUE_CHARS]
            elif key == "description" and self.description is None:
                self.description = content[:MAX_VALUE_CHARS]
        elif tag == "body":
            self.done = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split())[:MAX_VALUE_CHARS]
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self._in_title and sum(map(len, self._title_parts)) < MAX_VALUE_CHARS:
            self._title_parts.append(data)


def _charset(content_type: str, body: bytes) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip("\"' ")
    m = _CHARSET.search(body[:2048])
    return m.group(1).decode("ascii") if m else "utf-8"


def open_graph(page: FetchedPage) -> dict[str, str]:
    """The preview of a fetched page: its kept ``og:`` values, with fallbacks."""
    mime = page.content_type.split(";")[0].strip().lower()
    if mime not in HTML_TYPES:
        return {"og:url": page.url}
    try:
        text = page.body.decode(_charset(page.content_type, page.body), errors="replace")
    except LookupError:  # an unknown charset name
        text = page.body.decode("utf-8", errors="replace")
    parser = _OpenGraph()
    try:
        parser.feed(text)
        parser.close()
    except AssertionError:  # html.parser gives up on some broken markup: keep what it has
        pass
    out = {k: v for k, v in parser.og.items() if k in KEPT}
    if "og:title" not in out and parser.title:
        out["og:title"] = parser.title
    if "og:description" not in out and parser.description:
        out["og:description"] = parser.description
    out.setdefault("og:url", page.url)
    return out


class UrlPreviews:
    def __init__(self, fetcher: PageFetcher, clock: Any, *, rate_limits: bool = True) -> None:
        self.fetcher = fetcher
        self.clock = clock
        self._cache: OrderedDict[str, tuple[int, dict | None]] = OrderedDict()
        self._inflight: dict[str, list[defer.Deferred]] = {}
        self.limiter = RateLimiter(
            _Seconds(clock),
            per_second=PREVIEWS_PER_SECOND,
            burst_count=PREVIEWS_BURST,
            enabled=rate_limits,
        )

    async def preview(self, user_id: str, url: str) -> dict:
        try:
            check_url(url)
        except FetchFailed as exc:
            raise MatrixError(str(exc), errcode="M_INVALID_PARAM") from None
        now = self.clock.time_ms()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            return _answer(cached[1])
        waiters = self._inflight.get(url)
        if waiters is not None:
            d: defer.Deferred = defer.Deferred()
            waiters.append(d)
            return _answer(await d)
        self.limiter.check(user_id)  # only fetches count
        if len(self._inflight) >= MAX_FETCHING:
            raise MatrixError(
                "Too many previews are being made", errcode="M_LIMIT_EXCEEDED", http_status=429
            )
        self._inflight[url] = []
        result: dict | None = None
        try:
            result = open_graph(await self.fetcher.fetch(url))
        except FetchFailed:
            result = None
        finally:
            ttl = CACHE_MS if result is not None else FAILURE_CACHE_MS
            self._cache[url] = (self.clock.time_ms() + ttl, result)
            self._cache.move_to_end(url)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            for w in self._inflight.pop(url, []):
                w.callback(result)
        return _answer(result)


def _answer(result: dict | None) -> dict:
    if result is None:
        raise NotFound("Could not make a preview of this URL")
    return dict(result)


class _Seconds:
    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def seconds(self) -> float:
        return self.clock.time_ms() / 1000
