"""Thumbnail rules of the spec ("Content repository" > "Thumbnails") on real Pillow images."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from node.config import MediaConfig
from node.media import thumbnailer
from node.media.thumbnailer import CannotThumbnail, TooLargeToThumbnail, choose_box, make_thumbnail

SIZES = [[32, 32], [96, 96], [320, 240], [640, 480], [800, 600]]
BIG = 50_000_000


def image_bytes(w: int, h: int, fmt: str = "PNG", mode: str = "RGB", color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (w, h), color if mode != "RGBA" else color + (128,)).save(out, fmt)
    return out.getvalue()


def open_result(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_choose_box_snaps_to_smallest_covering_configured_size():
    assert choose_box(30, 30, SIZES) == (32, 32)
    assert choose_box(50, 40, SIZES) == (96, 96)
    assert choose_box(300, 100, SIZES) == (320, 240)
    assert choose_box(321, 100, SIZES) == (640, 480)
    # Larger than every configured size: the one full-size box (the original, never upscaled),
    # so requests cannot create a thumbnail per distinct size.
    assert choose_box(1000, 1000, SIZES) == thumbnailer.FULL_SIZE_BOX


def test_scale_keeps_aspect_ratio_and_fits_the_box():
    thumb = make_thumbnail(
        image_bytes(1000, 500), 320, 240, "scale", animated=False, max_pixels=BIG
    )
    assert thumb is not None
    img = open_result(thumb.data)
    assert img.size == (320, 160) == (thumb.width, thumb.height)
    assert thumb.content_type == "image/png"  # PNG source stays lossless


def test_crop_returns_exactly_the_box_aspect():
    thumb = make_thumbnail(
        image_bytes(1000, 500, "JPEG"), 96, 96, "crop", animated=False, max_pixels=BIG
    )
    assert thumb is not None
    img = open_result(thumb.data)
    assert img.size == (96, 96)
    assert img.format == "JPEG" and thumb.content_type == "image/jpeg"


def test_crop_never_upscales_a_narrow_image():
    # 50 px wide: can't reach 96 wide without upscaling, so width stays 50, height cropped.
    thumb = make_thumbnail(
        image_bytes(50, 400, "JPEG"), 96, 96, "crop", animated=False, max_pixels=BIG
    )
    assert thumb is not None
    assert open_result(thumb.data).size == (50, 96)


def test_small_original_is_served_as_is():
    assert (
        make_thumbnail(image_bytes(20, 20), 32, 32, "crop", animated=False, max_pixels=BIG) is None
    )
    assert (
        make_thumbnail(
            image_bytes(300, 200, "JPEG"), 320, 240, "scale", animated=False, max_pixels=BIG
        )
        is None
    )


def test_transparency_is_kept_as_png():
    thumb = make_thumbnail(
        image_bytes(400, 400, "PNG", mode="RGBA"), 96, 96, "scale", animated=False, max_pixels=BIG
    )
    assert thumb is not None
    img = open_result(thumb.data)
    assert img.format == "PNG" and img.mode == "RGBA"


def test_exif_rotation_is_applied():
    out = io.BytesIO()
    img = Image.new("RGB", (400, 200), (10, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    img.save(out, "JPEG", exif=exif.tobytes())
    thumb = make_thumbnail(out.getvalue(), 320, 240, "scale", animated=False, max_pixels=BIG)
    assert thumb is not None
    assert open_result(thumb.data).size == (120, 240)  # shown as portrait 200x400


def gif_bytes(frames: int, w: int = 200, h: int = 200) -> bytes:
    imgs = [Image.new("RGB", (w, h), (i * 60, 255 - i * 60, 0)) for i in range(frames)]
    out = io.BytesIO()
    imgs[0].save(out, "GIF", save_all=True, append_images=imgs[1:], duration=80, loop=0)
    return out.getvalue()


def test_animated_only_when_requested():
    static = make_thumbnail(gif_bytes(3), 96, 96, "scale", animated=False, max_pixels=BIG)
    assert static is not None
    img = open_result(static.data)
    assert not getattr(img, "is_animated", False)
    assert static.content_type in ("image/png", "image/jpeg")

    anim = make_thumbnail(gif_bytes(3), 96, 96, "scale", animated=True, max_pixels=BIG)
    assert anim is not None and anim.content_type == "image/webp"
    img = open_result(anim.data)
    assert img.is_animated and img.n_frames == 3 and img.size == (96, 96)


def test_small_animation_is_re_encoded_when_animation_not_requested():
    # Fits the box, but returning the original would hand out an animation.
    thumb = make_thumbnail(gif_bytes(2, 20, 20), 32, 32, "crop", animated=False, max_pixels=BIG)
    assert thumb is not None
    assert not getattr(open_result(thumb.data), "is_animated", False)
    # ...and with animated=true the original animation itself is fine.
    assert (
        make_thumbnail(gif_bytes(2, 20, 20), 32, 32, "crop", animated=True, max_pixels=BIG) is None
    )


def test_uploader_content_type_is_irrelevant_pillow_decides():
    with pytest.raises(CannotThumbnail):
        make_thumbnail(
            b"<html><script>alert(1)</script></html>",
            96,
            96,
            "scale",
            animated=False,
            max_pixels=BIG,
        )


def test_truncated_image_is_refused_not_crashing():
    data = image_bytes(500, 500, "JPEG")
    with pytest.raises(CannotThumbnail):
        make_thumbnail(data[: len(data) // 3], 96, 96, "scale", animated=False, max_pixels=BIG)


def test_too_many_pixels():
    with pytest.raises(TooLargeToThumbnail):
        make_thumbnail(image_bytes(1000, 1000), 96, 96, "scale", animated=False, max_pixels=999_999)


def test_describe_reports_detected_type():
    assert thumbnailer.describe(image_bytes(10, 20, "GIF"), BIG)[:3] == ("image/gif", 10, 20)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_corrupted_images_never_crash(fmt):
    """Uploads are hostile: damaged bytes end in CannotThumbnail/TooLarge, nothing else."""
    import random

    rng = random.Random(fmt)
    original = image_bytes(120, 90, fmt) if fmt != "GIF" else gif_bytes(3, 120, 90)
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        try:
            thumb = make_thumbnail(
                bytes(data), 32, 32, "crop", animated=rng.random() < 0.5, max_pixels=BIG
            )
        except (CannotThumbnail, TooLargeToThumbnail):
            continue  # refused cleanly; any other exception fails the test
        if thumb is not None:
            assert Image.open(io.BytesIO(thumb.data)).size == (thumb.width, thumb.height)


# --- decompression bombs: the pixel budget applies to what is decoded --------------------------
def blank_png(w: int, h: int) -> bytes:
    """An all-black RGB PNG built row by row, so the test never holds ``w*h`` pixels itself.

    7000x7000 compresses to about 150 KB: the "small upload, huge image" case.
    """

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + tag
            + body
            + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * w)  # filter byte + RGB samples
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def pillow_blocks() -> int:
    """Image memory blocks Pillow has handed out so far (its own allocator, which tracemalloc
    cannot see); a 7000x7000 RGB decode takes a dozen 16 MiB blocks."""
    stats = Image.core.get_stats()
    return stats["allocated_blocks"] + stats["reused_blocks"]


DEFAULT_BUDGET = MediaConfig().max_thumbnail_pixels


def test_png_bomb_is_refused_without_decoding():
    bomb = blank_png(7000, 7000)
    assert len(bomb) < 300_000
    before = pillow_blocks()
    for box in ((96, 96), (800, 600)):
        with pytest.raises(TooLargeToThumbnail):
            make_thumbnail(bomb, *box, "scale", animated=False, max_pixels=DEFAULT_BUDGET)
    assert pillow_blocks() - before <= 1  # the header was read, no pixels were


def test_large_jpeg_is_decoded_at_reduced_size_within_the_budget():
    # 4000x4000 has 16 M pixels in its header, over a 4 M budget; libjpeg decodes it at 1/8
    # scale (500x500) for a 96x96 thumbnail, which is what the budget limits.
    out = io.BytesIO()
    Image.new("L", (4000, 4000), 90).save(out, "JPEG")
    plan = thumbnailer.plan(
        io.BytesIO(out.getvalue()), 96, 96, "crop", animated=False, max_pixels=4_000_000
    )
    assert plan.decode_pixels == 500 * 500
    thumb = make_thumbnail(out.getvalue(), 96, 96, "crop", animated=False, max_pixels=4_000_000)
    assert thumb is not None and open_result(thumb.data).size == (96, 96)
    # A box the reduced decode cannot cover needs the full 16 M pixels: over the budget.
    with pytest.raises(TooLargeToThumbnail):
        make_thumbnail(out.getvalue(), 2500, 2500, "scale", animated=False, max_pixels=4_000_000)


def test_plan_estimates_memory_before_decoding():
    plan = thumbnailer.plan(
        io.BytesIO(image_bytes(1000, 500)), 96, 96, "scale", animated=False, max_pixels=BIG
    )
    assert not plan.serve_original and plan.decode_pixels == 500_000
    assert plan.memory_bytes >= 500_000 * 4
    small = thumbnailer.plan(
        io.BytesIO(image_bytes(20, 20)), 96, 96, "scale", animated=False, max_pixels=BIG
    )
    assert small.serve_original and small.memory_bytes == 0
    with pytest.raises(TooLargeToThumbnail):
        thumbnailer.plan(
            io.BytesIO(blank_png(7000, 7000)),
            96,
            96,
            "scale",
            animated=False,
            max_pixels=DEFAULT_BUDGET,
        )


def test_animation_bomb_is_bounded():
    # 40 frames of 1200x1200: 57.6 M pixels to decode for an animated thumbnail.
    imgs = [Image.new("L", (1200, 1200), i * 6) for i in range(40)]  # all distinct frames
    out = io.BytesIO()
    imgs[0].save(out, "GIF", save_all=True, append_images=imgs[1:], duration=80, loop=0)
    anim = out.getvalue()
    assert open_result(anim).n_frames == 40
    with pytest.raises(TooLargeToThumbnail):
        make_thumbnail(anim, 96, 96, "scale", animated=True, max_pixels=DEFAULT_BUDGET)
    # Without animation only the first frame is decoded.
    thumb = make_thumbnail(anim, 96, 96, "scale", animated=False, max_pixels=DEFAULT_BUDGET)
    assert thumb is not None and not getattr(open_result(thumb.data), "is_animated", False)


def test_requests_beyond_the_configured_sizes_share_one_full_size_box():
    boxes = {
        choose_box(w, h, SIZES) for w in range(801, 10_001, 397) for h in range(601, 10_001, 613)
    }
    assert boxes == {thumbnailer.FULL_SIZE_BOX}
    # Never smaller than requested: the full-size box keeps the original size.
    assert (
        make_thumbnail(
            image_bytes(1200, 900),
            *thumbnailer.FULL_SIZE_BOX,
            "scale",
            animated=False,
            max_pixels=BIG,
        )
        is None
    )
