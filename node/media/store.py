"""Content-addressed file store for media bytes (under ``config.media_dir``).

Files are named by the SHA-256 of their bytes, sharded two levels deep
(``content/ab/cd/abcd...``), so identical uploads share one file and a name can never be chosen
by a client (no path traversal).  Writes go to a temporary file in the same filesystem, are
flushed to disk, then renamed into place, so a reader never sees a partial file.

All methods block: the service runs them on a worker thread, never on the reactor.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import BinaryIO

_SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")


class MediaStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self._content = os.path.join(root, "content")
        self._tmp = os.path.join(root, "tmp")
        os.makedirs(self._content, exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)

    def path_for(self, sha256: str) -> str:
        if not _SHA256_HEX.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return os.path.join(self._content, sha256[:2], sha256[2:4], sha256)

    def put(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex.  Storing known bytes again writes nothing."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256)
        if os.path.exists(path):
            return sha256
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=self._tmp, prefix="up-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)  # atomic; a concurrent identical put is harmless
        except BaseException:
            try:
                os.unlink(tmp_path)
            except FileNotFoundError:
                pass
            raise
        return sha256

    def get(self, sha256: str) -> bytes | None:
        try:
            with open(self.path_for(sha256), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def open(self, sha256: str) -> BinaryIO | None:
        """The stored file for reading a part of it (an image header), or ``None``."""
        try:
            return open(self.path_for(sha256), "rb")
        except FileNotFoundError:
            return None

    def open_sized(self, sha256: str) -> tuple[BinaryIO, int] | None:
        """The stored file and its size in bytes (for streaming it), or ``None``.

        The size is the open file's own, so it is what can actually be read from this handle.
        """
        fh = self.open(sha256)
        if fh is None:
            return None
        try:
            return fh, os.fstat(fh.fileno()).st_size
        except BaseException:
            fh.close()
            raise

    def has(self, sha256: str) -> bool:
        return os.path.exists(self.path_for(sha256))
