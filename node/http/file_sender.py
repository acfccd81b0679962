"""Response bodies streamed from an open file (media downloads).

A handler returns a ``FileResponse`` instead of bytes; ``ApiResource`` writes the headers and
hands the body to a ``FileProducer``.  The producer is a pull producer (``IPullProducer``)
registered on the request: twisted.web asks it for the next chunk only once the connection
has taken the previous ones (the transport pauses it while its send buffer is full), so a
slow or stalled reader makes the node wait, never buffer.  Memory per download is one chunk
(``CHUNK_BYTES``) plus the transport's buffer, whatever the file size, and each read on the
reactor is one chunk from a local file -- the same approach as ``twisted.web.static``.

The file is closed when the body is complete, when the client goes away
(``notifyFinish`` fails, or the transport stops the producer), or when the file turns out
shorter than the announced ``Content-Length`` -- then the connection is dropped, as the
client could otherwise wait forever for the missing bytes -- or when the reader takes no
chunk for ``STALL_TIMEOUT_SECONDS`` (then the connection is aborted).
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO

from twisted.internet.interfaces import IPullProducer
from zope.interface import implementer

log = logging.getLogger("parta.http")

CHUNK_BYTES = 64 * 1024
# A reader that takes no chunk for this long is dropped: a stalled download would otherwise
# hold its connection and an open file forever (the idle timeout is paused while a request
# is answered).
STALL_TIMEOUT_SECONDS = 120


class FileResponse:
    """A response whose body is ``length`` bytes of the open binary ``file`` (from its
    current position), between optional ``prefix`` and ``suffix`` bytes (multipart framing).

    The response owns ``file``: whoever gets it -- ``ApiResource`` normally -- must either
    stream it or ``close()`` it.
    """

    __slots__ = ("status", "file", "length", "content_type", "headers", "prefix", "suffix")

    def __init__(
        self,
        status: int,
        file: BinaryIO,
        length: int,
        content_type: str,
        headers: dict[str, str] | None = None,
        *,
        prefix: bytes = b"",
        suffix: bytes = b"",
    ) -> None:
        self.status = status
        self.file = file
        self.length = length
        self.content_type = content_type
        self.headers = headers or {}
        self.prefix = prefix
        self.suffix = suffix

    @property
    def content_length(self) -> int:
        return len(self.prefix) + self.length + len(self.suffix)

    def close(self) -> None:
        self.file.close()


@implementer(IPullProducer)
class FileProducer:
    """Writes a ``FileResponse``'s body to a started twisted.web request, chunk by chunk,
    then finishes the request.  Use ``FileProducer(request, response).start()``."""

    def __init__(self, request: Any, response: FileResponse) -> None:
        self._request = request
        self._file: BinaryIO | None = response.file
        self._remaining = response.length
        self._suffix = response.suffix
        self._prefix = response.prefix
        self._registered = False
        channel = getattr(request, "channel", None)
        self._call_later = getattr(channel, "callLater", None)
        self._stall_timer: Any = None

    def start(self) -> None:
        self._request.notifyFinish().addErrback(self._client_gone)
        if self._prefix:
            self._request.write(self._prefix)
            if self._file is None:  # the client went away meanwhile
                return
        if self._remaining <= 0:
            self._complete()
            return
        self._registered = True
        self._arm_stall_timer()
        self._request.registerProducer(self, False)

    # --- IPullProducer -------------------------------------------------------------------
    def resumeProducing(self) -> None:
        if self._file is None:
            return
        self._arm_stall_timer()
        chunk = self._file.read(min(CHUNK_BYTES, self._remaining))
        if not chunk:
            log.error(
                "Served file ended %d bytes before its Content-Length; dropping the connection",
                self._remaining,
            )
            self._close()
            self._unregister()
            self._request.loseConnection()
            return
        self._remaining -= len(chunk)
        self._request.write(chunk)
        if self._remaining <= 0 and self._file is not None:
            self._complete()

    def stopProducing(self) -> None:
        """The transport is going away (client disconnected): no more reads."""
        self._close()

    # --- internals -----------------------------------------------------------------------
    def _complete(self) -> None:
        self._close()
        if self._suffix:
            self._request.write(self._suffix)
        self._unregister()
        self._request.finish()

    def _client_gone(self, _failure: Any) -> None:
        # The connection is gone: twisted.web has dropped the request's channel and stops
        # the producer itself, so there is nothing to unregister, only the file to close.
        self._close()
        self._registered = False

    def _unregister(self) -> None:
        if self._registered:
            self._registered = False
            self._request.unregisterProducer()

    def _arm_stall_timer(self) -> None:
        if self._call_later is None:
            return
        if self._stall_timer is not None and self._stall_timer.active():
            self._stall_timer.reset(STALL_TIMEOUT_SECONDS)
        else:
            self._stall_timer = self._call_later(STALL_TIMEOUT_SECONDS, self._stalled)

    def _stalled(self) -> None:
        self._stall_timer = None
        if self._file is None:
            return
        log.info("event=download_stalled remaining=%d", self._remaining)
        self._close()
        self._unregister()
        transport = getattr(getattr(self._request, "channel", None), "transport", None)
        if transport is not None:
            transport.abortConnection()

    def _close(self) -> None:
        if self._stall_timer is not None and self._stall_timer.active():
            self._stall_timer.cancel()
        self._stall_timer = None
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
