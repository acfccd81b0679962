"""Media downloads stream from disk: the bytes and headers a client gets are the stored file's,
yet the node never holds a whole file in memory, HEAD sends no body, and a client that goes
away mid-download leaves no open file behind.

The requests run through the real ``ApiResource`` and router, in-process: ``Downloader`` is a
twisted.web test request that, like a real client, consumes the body as it arrives (it keeps
a hash and a count, not the bytes) and pulls the next chunk only after the previous one.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import tracemalloc
from types import SimpleNamespace

import pytest
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

import schema.media  # noqa: F401 - registers the tables
from node.config import MediaConfig
from node.http.file_sender import STALL_TIMEOUT_SECONDS
from test_media_api import TOKENS, media_api, media_path

MiB = 1024 * 1024
DOWNLOAD = "/_matrix/client/v1/media/download/"


@pytest.fixture
def api(tmp_path, monkeypatch):
    return media_api(
        tmp_path,
        monkeypatch,
        MediaConfig(max_upload_bytes=32 * MiB, per_user_quota_bytes=256 * MiB),
    )


class Downloader(DummyRequest):
    """A client reading the response body as it comes.  ``drop_after``: go away (connection
    lost) once that many body bytes arrived; ``on_write``: called after each body write."""

    def __init__(
        self,
        method: str,
        path: str,
        token: str = "tok-ben",
        *,
        drop_after: int | None = None,
        on_write=None,
    ) -> None:
        super().__init__([])
        self.method = method.encode()
        self.path = self.uri = path.encode()
        self.content = io.BytesIO(b"")
        self._disconnected = False
        self.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
        self.digest = hashlib.sha256()
        self.received = 0
        self.writes = 0
        self.drop_after = drop_after
        self.on_write = on_write
        self.connection_dropped = False
        self.producer = None

    def registerProducer(self, producer, streaming) -> None:
        self.producer = producer
        super().registerProducer(producer, streaming)

    def _connection_lost(self, why: str) -> None:
        """What twisted.web does when the connection closes: the transport stops the
        producer, and the request's ``notifyFinish`` deferreds fail."""
        self._disconnected = True
        self.go = 0
        if self.producer is not None:
            self.producer.stopProducing()
        self.processingFailed(Failure(ConnectionDone(why)))

    def write(self, data: bytes) -> None:
        if self._disconnected:
            return  # the transport is gone: bytes vanish
        self.digest.update(data)
        self.received += len(data)
        self.writes += 1
        if self.on_write is not None:
            self.on_write(self)
        if self.drop_after is not None and self.received >= self.drop_after:
            self._connection_lost("the pupil closed the tab")

    def loseConnection(self) -> None:  # twisted.web's Request has it
        self.connection_dropped = True
        self._connection_lost("closed by the server")

    def header(self, name: str) -> str | None:
        value = self.responseHeaders.getRawHeaders(name)
        return value[-1] if value else None


def fetch(api, req: Downloader) -> Downloader:
    api.resource.render(req)
    return req


def upload_file(
    api, size: int, content_type: str = "video/mp4", filename: str = "Projektwoche.mp4"
) -> tuple[str, str]:
    """Upload ``size`` random bytes as Anna; return (download path, sha256 hex)."""
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    mxc = defer.ensureDeferred(
        api.media.upload(TOKENS["tok-anna"], content_type, filename, data)
    ).result
    return DOWNLOAD + media_path(mxc), digest


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_large_download_is_identical_with_all_headers(api):
    path, digest = upload_file(api, 8 * MiB + 123)
    got = fetch(api, Downloader("GET", path))
    assert got.finished and got.responseCode in (None, 200)
    assert got.received == 8 * MiB + 123 and got.digest.hexdigest() == digest
    assert got.writes > 1  # it arrived in pieces
    assert got.header("content-length") == str(8 * MiB + 123)
    assert got.header("content-type") == "video/mp4"
    assert got.header("content-disposition") == 'inline; filename="Projektwoche.mp4"'
    assert "sandbox" in got.header("content-security-policy")
    assert got.header("x-content-type-options") == "nosniff"
    assert got.header("cross-origin-resource-policy") == "cross-origin"
    assert got.header("access-control-allow-origin") == "*"


def test_download_memory_does_not_grow_with_the_file(api):
    size = 20 * MiB
    path, digest = upload_file(api, size)
    gc.collect()
    tracemalloc.start()
    try:
        got = fetch(api, Downloader("GET", path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.finished and got.digest.hexdigest() == digest
    # The whole file would be 20 MiB; a download holds about one 64 KiB chunk at a time.
    assert peak < 2 * MiB, f"peak {peak} bytes while downloading a {size} byte file"


def test_head_sends_headers_without_body_and_closes_the_file(api):
    path, _ = upload_file(api, 300_000, "application/pdf", "Elternbrief.pdf")
    before = open_fds()
    got = fetch(api, Downloader("HEAD", path))
    assert got.finished and got.received == 0
    assert got.header("content-length") == "300000"
    assert got.header("content-type") == "application/pdf"
    assert got.header("content-disposition") == 'attachment; filename="Elternbrief.pdf"'
    assert open_fds() == before


def test_client_leaving_mid_download_closes_the_file(api):
    size = 4 * MiB
    path, digest = upload_file(api, size)
    before = open_fds()
    gone = fetch(api, Downloader("GET", path, drop_after=200_000))
    assert not gone.finished
    assert gone.received < size  # the node stopped sending
    assert open_fds() == before  # and closed the file
    # Everyone else still downloads it.
    other = fetch(api, Downloader("GET", path, token="tok-anna"))
    assert other.finished and other.digest.hexdigest() == digest
    assert open_fds() == before


def test_file_shrinking_under_a_download_drops_the_connection(api):
    """The body can no longer match the announced Content-Length: the client must see a
    broken download, not wait forever for bytes that will never come."""
    size = 1 * MiB
    path, _ = upload_file(api, size)
    stored = [
        os.path.join(d, f)
        for d, _, fs in os.walk(api.media.store.root)
        for f in fs
        if "content" in d
    ]
    assert len(stored) == 1
    before = open_fds()

    def truncate_once(req: Downloader) -> None:
        if req.writes == 1:
            os.truncate(stored[0], 100)

    got = fetch(api, Downloader("GET", path, on_write=truncate_once))
    assert got.connection_dropped and not got.finished
    assert got.received < size
    assert open_fds() == before


def test_empty_file_downloads(api):
    path, digest = upload_file(api, 0, "text/plain", "leer.txt")
    got = fetch(api, Downloader("GET", path))
    assert got.finished and got.received == 0 and got.digest.hexdigest() == digest
    assert got.header("content-length") == "0"


class StalledReader(Downloader):
    """A client that takes the first chunk and then reads nothing more (its socket buffer
    stays full, so twisted.web never asks the producer for the next chunk)."""

    def __init__(self, method: str, path: str, clock: Clock) -> None:
        super().__init__(method, path)
        self.aborted = False
        self.channel = SimpleNamespace(
            callLater=clock.callLater, transport=SimpleNamespace(abortConnection=self._abort)
        )

    def registerProducer(self, producer, streaming) -> None:
        self.producer = producer
        producer.resumeProducing()  # one chunk, then nothing

    def unregisterProducer(self) -> None:
        self.producer = None

    def _abort(self) -> None:
        self.aborted = True


def test_stalled_download_is_dropped_and_its_file_closed(api):
    clock = Clock()
    path, _ = upload_file(api, 2 * MiB)
    before = open_fds()
    reader = fetch(api, StalledReader("GET", path, clock))
    assert reader.received > 0 and not reader.finished
    assert open_fds() == before + 1  # the download holds its file
    clock.advance(STALL_TIMEOUT_SECONDS - 1)
    assert not reader.aborted
    reader.producer.resumeProducing()  # a slow reader that still reads
    clock.advance(STALL_TIMEOUT_SECONDS - 1)  # is not dropped
    assert not reader.aborted
    clock.advance(2)
    assert reader.aborted and open_fds() == before
