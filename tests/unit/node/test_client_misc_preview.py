"""URL previews: what a page's head turns into, the cache and limits, and that the fetcher
never connects to an address the filter refuses."""

from __future__ import annotations

import logging

import pytest
from support.clocks import FakeClock
from support.deferreds import result_of
from twisted.internet import defer, task

from federation.errors import MatrixError
from federation.transport.ip_ranges import DEFAULT_IP_RANGE_BLACKLIST, AddressFilter
from node.media import preview as preview_mod
from node.media.preview import UrlPreviews, open_graph
from node.media.preview_fetch import FetchedPage, FetchFailed, WebFetcher, check_url

PAGE = b"""<!doctype html><html><head>
<meta charset="utf-8"><title>  Klassenfahrt
 nach Wien </title>
<meta property="og:title" content="Klassenfahrt 7B">
<meta property="og:description" content="Fotos &amp; Berichte">
<meta property="og:image" content="http://10.0.0.1/secret.png">
<meta property="og:site_name" content="Schule">
<meta name="description" content="ignored: og:description wins">
</head><body><meta property="og:title" content="in the body: ignored"></body></html>"""


def page(body: bytes, content_type="text/html; charset=utf-8", url="https://school.test/a"):
    return FetchedPage(url, content_type, body)


def test_open_graph_keeps_og_text_and_never_images():
    assert open_graph(page(PAGE)) == {
        "og:title": "Klassenfahrt 7B",
        "og:description": "Fotos & Berichte",
        "og:site_name": "Schule",
        "og:url": "https://school.test/a",
    }


def test_title_and_description_are_fallbacks():
    body = b"<html><head><title>Wien\n  2026</title><meta name=description content=Reise></head>"
    assert open_graph(page(body)) == {
        "og:title": "Wien 2026",
        "og:description": "Reise",
        "og:url": "https://school.test/a",
    }


def test_charset_from_the_header_or_the_page():
    latin = "<title>Gr\u00fc\u00dfe</title>".encode("latin-1")
    assert open_graph(page(latin, "text/html; charset=iso-8859-1"))["og:title"] == "Gr\u00fc\u00dfe"
    with_meta = b'<meta charset="iso-8859-1">' + latin
    assert open_graph(page(with_meta, "text/html"))["og:title"] == "Gr\u00fc\u00dfe"
    assert "og:title" in open_graph(page(latin, "text/html; charset=no-such-charset"))


def test_non_html_and_hostile_pages():
    assert open_graph(page(b"\x89PNG...", "image/png")) == {"og:url": "https://school.test/a"}
    huge = b"<meta property='og:title' content='" + b"x" * 100_000 + b"'>"
    assert len(open_graph(page(huge))["og:title"]) == preview_mod.MAX_VALUE_CHARS
    many = b"".join(b"<meta name=x%d content=y>" % i for i in range(10_000))
    assert open_graph(page(many + b"<meta property=og:title content=late>")) == {
        "og:url": "https://school.test/a"
    }
    assert open_graph(page(b"<html><head><title>unclosed <<<>>> &#xFFFFFFFF;"))["og:url"]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://x/",
        "http://user:pw@school.test/",
        "http:///nohost",
        "https://school.test/ space",
        "https://schüle.test/",
        "http://school.test:99999/",
        "https://school.test/" + "a" * 3000,
    ],
)
def test_urls_that_are_never_fetched(url):
    with pytest.raises(FetchFailed):
        check_url(url)


class FakeFetcher:
    def __init__(self, result=None):
        self.calls: list[str] = []
        self.result = result if result is not None else page(PAGE)
        self.pending: defer.Deferred | None = None

    async def fetch(self, url):
        self.calls.append(url)
        if self.pending is not None:
            return await self.pending
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def ask(previews, url, user="@a:school.test"):
    try:
        return 200, result_of(previews.preview(user, url))
    except MatrixError as exc:
        return exc.http_status, exc.errcode


def test_answers_are_cached_and_failures_are_one_uniform_404():
    clock = FakeClock()
    fetcher = FakeFetcher()
    previews = UrlPreviews(fetcher, clock)
    status, body = ask(previews, "https://school.test/a")
    assert status == 200 and body["og:title"] == "Klassenfahrt 7B"
    assert ask(previews, "https://school.test/a")[1] == body and len(fetcher.calls) == 1
    clock.advance(preview_mod.CACHE_MS)
    ask(previews, "https://school.test/a")
    assert len(fetcher.calls) == 2

    failing = UrlPreviews(FakeFetcher(FetchFailed("ConnectionRefusedError")), clock)
    assert ask(failing, "http://closed.test:1/") == (404, "M_NOT_FOUND")
    assert ask(failing, "file:///etc/passwd") == (400, "M_INVALID_PARAM")


def test_one_fetch_for_everyone_asking_at_once_and_per_user_limits():
    fetcher = FakeFetcher()
    fetcher.pending = defer.Deferred()
    previews = UrlPreviews(fetcher, FakeClock())
    first = defer.ensureDeferred(previews.preview("@a:school.test", "https://school.test/a"))
    second = defer.ensureDeferred(previews.preview("@b:school.test", "https://school.test/a"))
    assert len(fetcher.calls) == 1
    fetcher.pending.callback(page(PAGE))
    assert result_of(first) == result_of(second)

    limited = UrlPreviews(FakeFetcher(), FakeClock())
    for i in range(preview_mod.PREVIEWS_BURST):
        assert ask(limited, f"https://school.test/{i}")[0] == 200
    assert ask(limited, "https://school.test/more") == (429, "M_LIMIT_EXCEEDED")
    assert ask(limited, "https://school.test/0")[0] == 200  # cached answers are free
    assert ask(limited, "https://school.test/more", user="@b:school.test")[0] == 200


class RecordingReactor(task.Clock):
    """A clock that fails the test if anything tries to open a connection."""

    def __init__(self) -> None:
        super().__init__()
        self.connections: list = []

    def connectTCP(self, host, port, factory, timeout=30, bindAddress=None):
        self.connections.append((host, port))
        raise AssertionError(f"connected to {host}:{port}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8008/_matrix/client/versions",
        "http://[::1]/",
        "https://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:192.168.1.1]/",
    ],
)
def test_fetcher_never_connects_to_refused_addresses(url, caplog):
    reactor = RecordingReactor()
    fetcher = WebFetcher(reactor, AddressFilter(DEFAULT_IP_RANGE_BLACKLIST, ()))
    with caplog.at_level(logging.WARNING), pytest.raises(FetchFailed, match="AddressRefused"):
        result_of(fetcher.fetch(url))
    assert reactor.connections == []
    # The operator's log says which client was refused, not "federation".
    assert "event=url_preview_address_refused" in caplog.text
    assert "federation_address_refused" not in caplog.text
