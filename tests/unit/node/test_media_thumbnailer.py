"""Thumbnail rules of the spec ("Content repository" > "Thumbnails") on real Pillow images."""

from __future__ import annotations

import io

import pytest
from PIL import Image

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
    # Larger than every configured size: served at the requested size itself.
    assert choose_box(1000, 1000, SIZES) == (1000, 1000)


def test_scale_keeps_aspect_ratio_and_fits_the_box():
    thumb = make_thumbnail(image_bytes(1000, 500), 320, 240, "scale", animated=False,
                           max_pixels=BIG)
    assert thumb is not None
    img = open_result(thumb.data)
    assert img.size == (320, 160) == (thumb.width, thumb.height)
    assert thumb.content_type == "image/png"          # PNG source stays lossless


def test_crop_returns_exactly_the_box_aspect():
    thumb = make_thumbnail(image_bytes(1000, 500, "JPEG"), 96, 96, "crop", animated=False,
                           max_pixels=BIG)
    assert thumb is not None
    img = open_result(thumb.data)
    assert img.size == (96, 96)
    assert img.format == "JPEG" and thumb.content_type == "image/jpeg"


def test_crop_never_upscales_a_narrow_image():
    # 50 px wide: can't reach 96 wide without upscaling, so width stays 50, height cropped.
    thumb = make_thumbnail(image_bytes(50, 400, "JPEG"), 96, 96, "crop", animated=False,
                           max_pixels=BIG)
    assert thumb is not None
    assert open_result(thumb.data).size == (50, 96)


def test_small_original_is_served_as_is():
    assert make_thumbnail(image_bytes(20, 20), 32, 32, "crop", animated=False,
                          max_pixels=BIG) is None
    assert make_thumbnail(image_bytes(300, 200, "JPEG"), 320, 240, "scale", animated=False,
                          max_pixels=BIG) is None


def test_transparency_is_kept_as_png():
    thumb = make_thumbnail(image_bytes(400, 400, "PNG", mode="RGBA"), 96, 96, "scale",
                           animated=False, max_pixels=BIG)
    assert thumb is not None
    img = open_result(thumb.data)
    assert img.format == "PNG" and img.mode == "RGBA"


def test_exif_rotation_is_applied():
    out = io.BytesIO()
    img = Image.new("RGB", (400, 200), (10, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6        # rotate 90 degrees clockwise when shown
    img.save(out, "JPEG", exif=exif.tobytes())
    thumb = make_thumbnail(out.getvalue(), 320, 240, "scale", animated=False, max_pixels=BIG)
    assert thumb is not None
    assert open_result(thumb.data).size == (120, 240)   # shown as portrait 200x400


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
    assert make_thumbnail(gif_bytes(2, 20, 20), 32, 32, "crop", animated=True,
                          max_pixels=BIG) is None


def test_uploader_content_type_is_irrelevant_pillow_decides():
    with pytest.raises(CannotThumbnail):
        make_thumbnail(b"<html><script>alert(1)</script></html>", 96, 96, "scale",
                       animated=False, max_pixels=BIG)


def test_truncated_image_is_refused_not_crashing():
    data = image_bytes(500, 500, "JPEG")
    with pytest.raises(CannotThumbnail):
        make_thumbnail(data[: len(data) // 3], 96, 96, "scale", animated=False, max_pixels=BIG)


def test_too_many_pixels():
    with pytest.raises(TooLargeToThumbnail):
        make_thumbnail(image_bytes(1000, 1000), 96, 96, "scale", animated=False,
                       max_pixels=999_999)


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
            thumb = make_thumbnail(bytes(data), 32, 32, "crop", animated=rng.random() < 0.5,
                                   max_pixels=BIG)
        except (CannotThumbnail, TooLargeToThumbnail):
            continue        # refused cleanly; any other exception fails the test
        if thumb is not None:
            assert Image.open(io.BytesIO(thumb.data)).size == (thumb.width, thumb.height)
