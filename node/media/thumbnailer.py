"""Thumbnail generation with Pillow (client-server API "Content repository" > "Thumbnails").

Pure bytes-in/bytes-out, no I/O: the service runs it on a worker thread.  The spec's rules as
applied here:

1. Methods: "scale" keeps the aspect ratio and fits the image inside the requested box (the
   client letterboxes); "crop" returns the box's aspect ratio, scaling to cover the box and then
   cutting the centre.
2. Sizes: requests snap to the smallest configured box covering them (the spec's recommended
   32x32, 96x96, 320x240, 640x480, 800x600), so a server never returns a thumbnail smaller than
   requested while the original is large enough, and the cache stays bounded.  A request larger
   than every configured box is served at its own size.
3. Never upscale; when the content is no larger than the box, the original is returned
   (``make_thumbnail`` returns ``None`` and the caller serves the stored bytes) unless it must
   be re-encoded (an animation when ``animated`` is not requested).
4. ``animated``: only ``true`` may produce an animated thumbnail (WebP); otherwise the first frame.
5. Pillow decides what the content is; the uploader's Content-Type is never trusted.  Images
   with too many pixels are refused (413 ``M_TOO_LARGE`` at the API), undecodable content too
   (400).  Output is PNG when the source has transparency or is lossless, JPEG otherwise — both
   on the spec's list of types safe to serve inline.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Sequence

# Pillow is imported on first use (``_load_pillow``): a node that never thumbnails never
# maps its codecs (about 2 MiB of RSS at idle, measured with bench/bench_node.py).
Image = ImageOps = ImageSequence = None  # type: ignore[assignment]

METHODS = ("crop", "scale")
MAX_ANIMATION_FRAMES = 150
# Content types a thumbnail (or an original returned in place of one) may be served as.
THUMBNAIL_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                   "WEBP": "image/webp"}


class CannotThumbnail(Exception):
    """The content is not an image Pillow can decode."""


class TooLargeToThumbnail(Exception):
    """The image has more pixels (or frames) than the configured limit."""


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int


def choose_box(width: int, height: int, sizes: Sequence[Sequence[int]]) -> tuple[int, int]:
    """Rule 2: the smallest configured box at least as large as the request in both axes."""
    fitting = [(int(w), int(h)) for w, h in sizes if w >= width and h >= height]
    if not fitting:
        return width, height
    return min(fitting, key=lambda wh: (wh[0] * wh[1], wh))


def _scaled_size(src_w: int, src_h: int, box_w: int, box_h: int, method: str) -> tuple[int, int]:
    """Rule 1 and 3: the size the whole image is resized to (before any crop), never larger."""
    if method == "scale":
        factor = min(box_w / src_w, box_h / src_h, 1.0)
    else:
        factor = min(max(box_w / src_w, box_h / src_h), 1.0)
    return max(1, round(src_w * factor)), max(1, round(src_h * factor))


def _resize_frame(frame: Image.Image, box_w: int, box_h: int, method: str) -> Image.Image:
    w, h = _scaled_size(frame.width, frame.height, box_w, box_h, method)
    if (w, h) != frame.size:
        frame = frame.resize((w, h), Image.Resampling.LANCZOS)
    if method == "crop":
        cw, ch = min(box_w, w), min(box_h, h)
        left, top = (w - cw) // 2, (h - ch) // 2
        if (cw, ch) != (w, h):
            frame = frame.crop((left, top, left + cw, top + ch))
    return frame


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _encode_static(img: Image.Image, lossless_source: bool) -> tuple[bytes, str]:
    out = io.BytesIO()
    if _has_alpha(img) or lossless_source:
        if img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            img = img.convert("RGBA")
        img.save(out, "PNG", optimize=False)
        return out.getvalue(), "image/png"
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    img.save(out, "JPEG", quality=80, optimize=False)
    return out.getvalue(), "image/jpeg"


def _load_pillow() -> None:
    global Image, ImageOps, ImageSequence
    if ImageSequence is None:
        from PIL import Image, ImageOps, ImageSequence  # noqa: F811


def _open(data: bytes, max_pixels: int) -> Image.Image:
    _load_pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLargeToThumbnail("image has too many pixels") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not an image we read"
        raise CannotThumbnail(f"cannot read image: {type(exc).__name__}") from None
    if img.width <= 0 or img.height <= 0:
        raise CannotThumbnail("image has no pixels")
    if img.width * img.height > max_pixels:
        raise TooLargeToThumbnail("image has too many pixels")
    return img


def describe(data: bytes, max_pixels: int) -> tuple[str | None, int, int, bool]:
    """(inline-safe content type or None, width, height, animated) as Pillow sees the bytes."""
    img = _open(data, max_pixels)
    try:
        is_animated = bool(getattr(img, "is_animated", False))
    except Exception as exc:  # noqa: BLE001 - corrupt frame data
        raise CannotThumbnail(f"cannot read image: {type(exc).__name__}") from None
    return THUMBNAIL_TYPES.get(img.format or ""), img.width, img.height, is_animated


def make_thumbnail(data: bytes, box_w: int, box_h: int, method: str, *, animated: bool,
                   max_pixels: int) -> Thumbnail | None:
    """A thumbnail of ``data`` for the box, or ``None`` meaning "serve the original" (rule 3)."""
    if method not in METHODS:
        raise ValueError(method)
    img = _open(data, max_pixels)
    try:
        return _thumbnail_of(img, box_w, box_h, method, animated, max_pixels)
    except (TooLargeToThumbnail, CannotThumbnail):
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data fails on load, not open
        raise CannotThumbnail(f"cannot decode image: {type(exc).__name__}") from None


def _thumbnail_of(img: Image.Image, box_w: int, box_h: int, method: str, animated: bool,
                  max_pixels: int) -> Thumbnail | None:
    source_type = THUMBNAIL_TYPES.get(img.format or "")
    is_animated = bool(getattr(img, "is_animated", False))
    # The EXIF orientation swaps axes for rotated photos; compare against the shown size.
    orientation = img.getexif().get(0x0112, 1)
    shown_w, shown_h = (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size
    fits = shown_w <= box_w and shown_h <= box_h
    want_animation = animated and is_animated
    if fits and source_type is not None and orientation == 1 and (want_animation
                                                                   or not is_animated):
        return None
    if want_animation:
        n_frames = int(getattr(img, "n_frames", 1))
        if n_frames > MAX_ANIMATION_FRAMES or n_frames * img.width * img.height > max_pixels:
            raise TooLargeToThumbnail("animation has too many frames")
        return _animated_thumbnail(img, box_w, box_h, method)
    if img.format == "JPEG":
        # Let libjpeg decode at a reduced scale (still >= the box) - much less work.
        img.draft("RGB", (max(box_w, box_h), max(box_w, box_h)))
    img.seek(0)
    frame = ImageOps.exif_transpose(img)
    frame = _resize_frame(frame, box_w, box_h, method)
    body, ctype = _encode_static(frame, lossless_source=img.format in ("PNG", "GIF"))
    return Thumbnail(body, ctype, frame.width, frame.height)


def _animated_thumbnail(img: Image.Image, box_w: int, box_h: int, method: str) -> Thumbnail:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(img):
        durations.append(int(frame.info.get("duration", 100)) or 100)
        frames.append(_resize_frame(frame.convert("RGBA"), box_w, box_h, method))
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=durations,
                   loop=int(img.info.get("loop", 0)), quality=80)
    return Thumbnail(out.getvalue(), "image/webp", frames[0].width, frames[0].height)
