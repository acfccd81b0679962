"""Small real images for the media tests (decoded by Pillow like an upload would be)."""

from __future__ import annotations

import io

from PIL import Image


def png(w: int, h: int) -> bytes:
    """A ``w`` x ``h`` RGB PNG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", (w, h), (0, 120, 240)).save(out, "PNG")
    return out.getvalue()
