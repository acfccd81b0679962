"""Media of other servers for the client API (``GET /_matrix/client/v1/media/download/
{serverName}/{mediaId}``).

Spec: server-server API "Content Repository": servers "MUST download the media from
ServerName" with ``GET /_matrix/federation/v1/media/download/{mediaId}``
(``content_repository.yaml``): a ``multipart/mixed`` answer with exactly two parts, a JSON
metadata object and the bytes with their ``Content-Type`` / ``Content-Disposition`` (or a
``Location`` redirect, which this server does not follow: 502); "servers MUST try the
endpoints described below before falling back to the deprecated ``/_matrix/media/*``
endpoints when they receive a 404 M_UNRECOGNIZED error. When falling back, servers MUST be
sure to set ``allow_remote`` to false".

Downloads are bounded (``max_bytes``) and the most recent ones are kept in memory
(bounded total size), so a file shared into a room is fetched once by the whole school.

Any user can name any server here, so the answer must not tell a prober anything about the
place it named: every failure to get a usable answer (address refused by
``federation.ip_range_blacklist``, connection refused, timeout, TLS failure, an HTTP error
or an unreadable response) is the same 502 ``M_UNKNOWN`` with the same text, and the
details go to the node's log only.  A remote 404 is 404 ``M_NOT_FOUND``; a remote 413 is
502 ``M_TOO_LARGE`` (the spec's answer for media too large to serve).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from typing import Any

import orjson

from federation.errors import MatrixError, NotFound
from federation.transport import endpoints as E
from federation.transport.errors import FederationRequestError
from node.media.headers import filename_from_disposition
from node.media.service import MediaInfo

log = logging.getLogger("parta.federation.media")

UNAVAILABLE = "Could not fetch the media from the remote server"


def _boundary(content_type: str) -> bytes | None:
    m = re.search(r'boundary="?([^";]+)"?', content_type or "", re.IGNORECASE)
    return m.group(1).encode("latin-1") if m else None


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/mixed`` body: (lower-cased headers, content)."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise ValueError("multipart response without a boundary")
    delim = b"--" + boundary
    parts = []
    chunks = body.split(delim)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            if chunk.startswith(b"\r\n"):  # no headers at all
                head, content = b"", chunk[2:]
            else:
                raise ValueError("multipart part without a header block")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon:
                headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        parts.append((headers, content))
    return parts


def _filename(disposition: str | None) -> str | None:
    """The remote ``filename`` (``filename*`` preferred), cleaned like our own upload names:
    it is served again in our ``Content-Disposition``; a malformed header gives no name."""
    return filename_from_disposition(disposition)


def _unavailable(server_name: str, media_id: str, detail: str) -> MatrixError:
    """The one answer for every remote failure; ``detail`` goes to the log only."""
    log.warning(
        "event=remote_media_failed server=%s media_id=%s detail=%s", server_name, media_id, detail
    )
    return MatrixError(UNAVAILABLE, errcode="M_UNKNOWN", http_status=502)


class RemoteMedia:
    def __init__(
        self,
        *,
        client: Any,
        clock: Any,
        server_name: str,
        policy: Any = None,
        max_bytes: int = 50 * 1024 * 1024,
        cache_bytes: int = 32 * 1024 * 1024,
        timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self.policy = policy
        self.max_bytes = max_bytes
        self.cache_bytes = cache_bytes
        self.timeout = timeout
        self._cache: OrderedDict[tuple[str, str], tuple[MediaInfo, bytes]] = OrderedDict()
        self._cached_size = 0

    async def download(self, server_name: str, media_id: str) -> tuple[MediaInfo, bytes]:
        key = (server_name, media_id)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        if self.policy is not None and not self.policy.allow_outbound(server_name):
            raise NotFound("Media not found")
        try:
            raw = await self.client.get_raw(
                server_name,
                E.MEDIA_DOWNLOAD.path(media_id),
                timeout=self.timeout,
                max_bytes=self.max_bytes,
            )
            if raw.status == 404 and self._errcode(raw.body) == "M_UNRECOGNIZED":
                raw = await self.client.get_raw(
                    server_name,
                    E.LEGACY_MEDIA_DOWNLOAD.path(server_name, media_id),
                    query={"allow_remote": "false"},
                    timeout=self.timeout,
                    max_bytes=self.max_bytes,
                )
                return self._remember(key, self._plain(server_name, media_id, raw))
        except FederationRequestError as exc:
            raise _unavailable(
                server_name, media_id, f"{type(exc).__name__}: {exc.message}"
            ) from None
        return self._remember(key, self._multipart(server_name, media_id, raw))

    @staticmethod
    def _errcode(body: bytes) -> str | None:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return value.get("errcode") if isinstance(value, dict) else None

    def _check_status(self, server_name: str, media_id: str, raw: Any) -> None:
        if raw.status == 404:
            raise NotFound("Media not found")
        if raw.status == 413:
            raise MatrixError("The media is too large", errcode="M_TOO_LARGE", http_status=502)
        if raw.status != 200:
            raise _unavailable(server_name, media_id, f"HTTP {raw.status}")

    def _info(
        self,
        server_name: str,
        media_id: str,
        content_type: str | None,
        disposition: str | None,
        data: bytes,
    ) -> MediaInfo:
        return MediaInfo(
            media_id=media_id,
            user_id="",
            upload_name=_filename(disposition),
            content_type=content_type or "application/octet-stream",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created_ts=self.clock.time_ms(),
        )

    def _multipart(self, server_name: str, media_id: str, raw: Any) -> tuple[MediaInfo, bytes]:
        self._check_status(server_name, media_id, raw)
        try:
            parts = parse_multipart(raw.body, raw.header("content-type") or "")
        except ValueError as exc:
            raise _unavailable(
                server_name, media_id, f"unreadable multipart response: {exc}"
            ) from None
        if len(parts) != 2:
            raise _unavailable(server_name, media_id, f"{len(parts)} parts instead of 2")
        headers, data = parts[1]
        if "location" in headers:
            raise _unavailable(
                server_name, media_id, "a Location redirect, which this server does not follow"
            )
        return self._info(
            server_name,
            media_id,
            headers.get("content-type"),
            headers.get("content-disposition"),
            data,
        ), data

    def _plain(self, server_name: str, media_id: str, raw: Any) -> tuple[MediaInfo, bytes]:
        self._check_status(server_name, media_id, raw)
        return self._info(
            server_name,
            media_id,
            raw.header("content-type"),
            raw.header("content-disposition"),
            raw.body,
        ), raw.body

    def _remember(
        self, key: tuple[str, str], entry: tuple[MediaInfo, bytes]
    ) -> tuple[MediaInfo, bytes]:
        size = len(entry[1])
        if size <= self.cache_bytes // 4:
            self._cache[key] = entry
            self._cached_size += size
            while self._cached_size > self.cache_bytes and self._cache:
                _, (_, old) = self._cache.popitem(last=False)
                self._cached_size -= len(old)
        return entry
