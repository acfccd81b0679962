"""Thumbnail generation with Pillow (client-server API "Content repository" > "Thumbnails").

Pure bytes-in/bytes-out, no I/O: the service runs it on a worker thread.  The spec's rules as
applied here:

1. Methods: "scale" keeps the aspect ratio and fits the image inside the requested box (the
   client letterboxes); "crop" returns the box's aspect ratio, scaling to cover the box and then
   cutting the centre.
2. Sizes: requests snap to the smallest configured box covering them (the spec's recommended
   32x32, 96x96, 320x240, 640x480, 800x600), so a server never returns a thumbnail smaller than
   requested while the original is large enough.  A request larger than every configured box
   gets the one ``FULL_SIZE_BOX``: the original size (never smaller than requested, never
   upscaled).  So one media item has at most ``len(sizes) + 1`` boxes per method and
   ``animated`` value, whatever sizes clients ask for, and the thumbnail cache stays bounded.
3. Never upscale; when the content is no larger than the box, the original is returned
   (``make_thumbnail`` returns ``None`` and the caller serves the stored bytes) unless it must
   be re-encoded (an animation when ``animated`` is not requested).
4. ``animated``: only ``true`` may produce an animated thumbnail (WebP); otherwise the first frame.
5. Pillow decides what the content is; the uploader's Content-Type is never trusted.  Undecodable
   content is refused (400).  Output is PNG when the source has transparency or is lossless,
   JPEG otherwise - both on the spec's list of types safe to serve inline.
6. Memory: a small upload can hold a huge image (a 150 KB PNG of 7000x7000 decodes to 196 MB).
   ``plan`` reads only the header and refuses (413 ``M_TOO_LARGE`` at the API) when the pixels
   that would be *decoded* exceed ``max_pixels``: the header size, except that JPEGs are
   decoded by libjpeg at 1/2, 1/4 or 1/8 scale (``Image.draft``) when the box allows, so a
   large photo costs its reduced size.  Animated thumbnails count every frame.  The plan's
   ``memory_bytes`` is what the service's ``WorkBudget`` admits jobs by.  Pillow's global
   ``Image.MAX_IMAGE_PIXELS`` is not relied on (it is process-wide and only warns below
   twice its value).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Sequence

# Pillow is imported on first use (``_load_pillow``): a node that never thumbnails never
# maps its codecs (about 2 MiB of RSS at idle, measured with bench/bench_node.py).
Image = ImageOps = ImageSequence = None  # type: ignore[assignment]

METHODS = ("crop", "scale")
MAX_ANIMATION_FRAMES = 150
MAX_DIMENSION = 10_000  # the largest width/height a client may ask for
# The box for requests larger than every configured size: the original, never upscaled.
FULL_SIZE_BOX = (MAX_DIMENSION, MAX_DIMENSION)
# Pillow keeps RGB/RGBA/CMYK pixels in 4 bytes (1 for L and P): the worst case per pixel.
BYTES_PER_PIXEL = 4
# Content types a thumbnail (or an original returned in place of one) may be served as.
THUMBNAIL_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


class CannotThumbnail(Exception):
    """The content is not an image Pillow can decode."""


class TooLargeToThumbnail(Exception):
    """The image has more pixels (or frames) to decode than the configured limit."""


@dataclass(frozen=True)
class Plan:
    """What thumbnailing one image for one box will cost, known from its header alone."""

    serve_original: bool  # rule 3: no decoding, the stored bytes are the answer
    decode_pixels: int = 0  # pixels of one decoded frame (after the JPEG draft)
    frames: int = 1  # frames decoded (animated thumbnails)
    kept_pixels: int = 0  # pixels of the resized frames held until encoding

    @property
    def memory_bytes(self) -> int:
        """Estimated peak: the decoded frame plus one full-size copy (EXIF rotation or a
        mode conversion), plus the resized frames of an animation."""
        if self.serve_original:
            return 0
        return (2 * self.decode_pixels + self.kept_pixels) * BYTES_PER_PIXEL


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int


def choose_box(width: int, height: int, sizes: Sequence[Sequence[int]]) -> tuple[int, int]:
    """Rule 2: the smallest configured box at least as large as the request in both axes,
    else ``FULL_SIZE_BOX``."""
    fitting = [(int(w), int(h)) for w, h in sizes if w >= width and h >= height]
    if not fitting:
        return FULL_SIZE_BOX
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
        # reducing_gap: a cheap integer box reduction first, then Lanczos on the small image.
        frame = frame.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=3.0)
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
        from PIL import Image, ImageOps, ImageSequence


def _open(data: bytes | BinaryIO, max_pixels: int) -> Image.Image:
    """Parse the header only (Pillow decodes lazily); refuse non-images and, except JPEGs,
    which ``_plan`` checks at their reduced decode size, anything over ``max_pixels``."""
    _load_pillow()
    fp = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        img = Image.open(fp)
    except Image.DecompressionBombError:  # over twice Pillow's own global limit
        raise TooLargeToThumbnail("image has too many pixels") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not an image we read"
        raise CannotThumbnail(f"cannot read image: {type(exc).__name__}") from None
    if img.width <= 0 or img.height <= 0:
        raise CannotThumbnail("image has no pixels")
    # libjpeg reduces by at most 8 in each axis: beyond 64x the budget no draft can help.
    limit = max_pixels * 64 if img.format == "JPEG" else max_pixels
    if img.width * img.height > limit:
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


def _orientation(img: Image.Image) -> int:
    orientation = img.getexif().get(0x0112, 1)
    return orientation if orientation in range(1, 9) else 1


def _plan(
    img: Image.Image, box_w: int, box_h: int, method: str, animated: bool, max_pixels: int
) -> Plan:
    """Rules 3, 4 and 6 on an opened, not yet decoded image.  Applies the JPEG draft to
    ``img``, so the decode that may follow is the reduced one that was budgeted."""
    source_type = THUMBNAIL_TYPES.get(img.format or "")
    is_animated = bool(getattr(img, "is_animated", False))
    # The EXIF orientation swaps axes for rotated photos; compare against the shown size.
    orientation = _orientation(img)
    shown_w, shown_h = (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size
    fits = shown_w <= box_w and shown_h <= box_h
    want_animation = animated and is_animated
    if (
        fits
        and source_type is not None
        and orientation == 1
        and (want_animation or not is_animated)
    ):
        return Plan(serve_original=True)
    pixels = img.width * img.height
    if want_animation:
        n_frames = int(getattr(img, "n_frames", 1))
        if n_frames > MAX_ANIMATION_FRAMES or n_frames * pixels > max_pixels:
            raise TooLargeToThumbnail("animation has too many frames")
        kept = n_frames * min(pixels, box_w * box_h)
        return Plan(serve_original=False, decode_pixels=pixels, frames=n_frames, kept_pixels=kept)
    if img.format == "JPEG":
        # libjpeg decodes at the smallest 1/2, 1/4 or 1/8 scale still covering the box.
        side = max(box_w, box_h)
        img.draft(img.mode if img.mode in ("RGB", "L") else None, (side, side))
        pixels = img.width * img.height
    if pixels > max_pixels:
        raise TooLargeToThumbnail("image has too many pixels")
    return Plan(serve_original=False, decode_pixels=pixels)


def _guarded(fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn``; any decoder failure other than our own refusals is ``CannotThumbnail``."""
    try:
        return fn(*args)
    except (TooLargeToThumbnail, CannotThumbnail):
        raise
    except Image.DecompressionBombError:
        raise TooLargeToThumbnail("image has too many pixels") from None
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data fails on load, not open
        raise CannotThumbnail(f"cannot decode image: {type(exc).__name__}") from None


def plan(
    source: bytes | BinaryIO,
    box_w: int,
    box_h: int,
    method: str,
    *,
    animated: bool,
    max_pixels: int,
) -> Plan:
    """Rule 6: the cost of thumbnailing ``source`` for the box, from its header only (a file
    object is read no further than the header, and the frame index of an animation)."""
    if method not in METHODS:
        raise ValueError(method)
    img = _open(source, max_pixels)
    return _guarded(_plan, img, box_w, box_h, method, animated, max_pixels)


def make_thumbnail(
    data: bytes, box_w: int, box_h: int, method: str, *, animated: bool, max_pixels: int
) -> Thumbnail | None:
    """A thumbnail of ``data`` for the box, or ``None`` meaning "serve the original" (rule 3)."""
    if method not in METHODS:
        raise ValueError(method)
    img = _open(data, max_pixels)
    return _guarded(_thumbnail_of, img, box_w, box_h, method, animated, max_pixels)


def _thumbnail_of(
    img: Image.Image, box_w: int, box_h: int, method: str, animated: bool, max_pixels: int
) -> Thumbnail | None:
    cost = _plan(img, box_w, box_h, method, animated, max_pixels)
    if cost.serve_original:
        return None
    if cost.frames > 1:
        return _animated_thumbnail(img, box_w, box_h, method)
    lossless = img.format in ("PNG", "GIF")
    img.seek(0)
    if _orientation(img) != 1:
        frame = ImageOps.exif_transpose(img)  # a rotated copy: the budgeted second buffer
    else:
        img.load()  # no copy: exif_transpose would make one
        frame = img
    frame = _resize_frame(frame, box_w, box_h, method)
    body, ctype = _encode_static(frame, lossless_source=lossless)
    return Thumbnail(body, ctype, frame.width, frame.height)


def _animated_thumbnail(img: Image.Image, box_w: int, box_h: int, method: str) -> Thumbnail:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(img):
        durations.append(int(frame.info.get("duration", 100)) or 100)
        frames.append(_resize_frame(frame.convert("RGBA"), box_w, box_h, method))
    out = io.BytesIO()
    frames[0].save(
        out,
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=int(img.info.get("loop", 0)),
        quality=80,
    )
    return Thumbnail(out.getvalue(), "image/webp", frames[0].width, frames[0].height)
