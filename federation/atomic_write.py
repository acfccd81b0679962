"""Replacing a small file so that a reader, or a crash, never sees half of it.

Key files, TLS certificates and the roster are read at start-up: a node stopped in the
middle of rewriting one must find the old file or the new one, never a truncated mix.  The
new content goes to a temporary file in the same directory (so the rename stays on one
file system), is flushed to disk, then renamed over the old name, which POSIX makes
atomic.  The file mode is set before any byte is written, so a secret is never readable
by others, even briefly.
"""

from __future__ import annotations

import os
import tempfile


def write_file_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    mode: int,
    *,
    prefix: str = ".tmp-",
    make_dirs: bool = False,
) -> None:
    """Replace ``path`` by ``data`` with file mode ``mode`` (temp file, fsync, rename).

    ``prefix`` names the temporary file beside ``path`` (what a leftover one came from);
    ``make_dirs`` creates the directory first, otherwise a missing one is an error.  On
    any failure the temporary file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if make_dirs:
        os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
