"""Bad and unusual images through the library's loader: a clear ImageError or a sane RGB array."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fer.core.images import MAX_SIDE, ImageError, as_rgb_frame, load_image, resize_to_width, to_grey


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rgb_photo(size=(200, 160)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


BAD = {
    "corrupt bytes": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "corrupt"),
    "empty file": (b"", "empty"),
    "text renamed .jpg": (b"hello, I am not a picture\n" * 20, "not an image"),
    "truncated jpeg": (encoded(rgb_photo(), "JPEG")[:300], "corrupt or truncated"),
    "1x1": (encoded(Image.new("RGB", (1, 1)), "PNG"), "too small"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_files_raise_a_clear_error(name, tmp_path):
    data, message = BAD[name]
    path = tmp_path / "upload.jpg"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=message) as e:
        load_image(path)
    assert "upload.jpg" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "gone.png")


GOOD = {
    "RGBA": lambda: encoded(rgb_photo().convert("RGBA"), "PNG"),
    "16-bit grey": lambda: encoded(Image.fromarray((np.arange(160 * 200).reshape(160, 200) * 2).astype(np.uint16)), "PNG"),
    "palette": lambda: encoded(rgb_photo().convert("P"), "PNG"),
    "CMYK": lambda: encoded(rgb_photo().convert("CMYK"), "JPEG"),
    "grey": lambda: encoded(rgb_photo().convert("L"), "PNG"),
    "animated GIF": lambda: encoded(rgb_photo().convert("P"), "GIF", save_all=True,
                                    append_images=[rgb_photo().convert("P").rotate(90)] * 3, duration=100, loop=0),
}


@pytest.mark.parametrize("name", GOOD)
def test_unusual_modes_become_rgb(name):
    image = load_image(GOOD[name](), name=name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.shape[:2] == (160, 200)


def test_huge_images_are_downscaled_before_detection():
    big = Image.new("RGB", (6000, 6000), (120, 90, 60))
    for data in (encoded(big, "PNG"), encoded(big, "JPEG", quality=90)):
        image = load_image(data)
        assert max(image.shape[:2]) == MAX_SIDE


def test_decompression_bomb_is_refused():
    bomb = encoded(Image.new("1", (12000, 12000)), "PNG")  # tiny file, 144 megapixels
    with pytest.raises(ImageError, match=r"too large to decode safely \(over 89\.5 megapixels"):
        load_image(bomb)


@pytest.mark.parametrize("frame", [
    None, np.zeros((0, 0, 3), np.uint8), np.zeros((5, 5, 3), np.uint8), np.zeros((10, 10, 10, 3), np.uint8),
    np.zeros((64, 64, 2), np.uint8),
])
def test_unusable_stream_frames_are_none(frame):
    assert as_rgb_frame(frame) is None


@pytest.mark.parametrize("frame", [
    np.zeros((48, 64), np.uint8), np.zeros((48, 64, 1), np.uint8), np.zeros((48, 64, 4), np.uint8),
    np.ones((48, 64, 3), np.float32), np.full((48, 64, 3), 4000, np.uint16), np.zeros((47, 63, 3), np.uint8),
])
def test_odd_stream_frames_become_rgb(frame):
    rgb = as_rgb_frame(frame)
    assert rgb.dtype == np.uint8 and rgb.shape == frame.shape[:2] + (3,)


def test_resize_to_width_shrinks_never_enlarges_and_gives_the_factor():
    image = np.zeros((480, 640, 3), np.uint8)
    small, factor = resize_to_width(image, 320)
    assert small.shape == (240, 320, 3) and factor == 0.5
    same, factor = resize_to_width(image, 1000)
    assert same is image and factor == 1.0


def test_to_grey_takes_grey_rgb_and_rgba():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = to_grey(rgb)
    assert grey.shape == (20, 30) and np.array_equal(grey, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    rgba = np.dstack([rgb, np.full((20, 30), 255, np.uint8)])
    assert np.array_equal(to_grey(rgba), grey) and to_grey(grey) is grey
    assert np.array_equal(to_grey(grey[..., None]), grey)
