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


# ---- decoding within limits: memory bounded by the work, not the file ----------------------------------------

def test_a_budget_refuses_what_could_never_fit_and_the_message_names_the_size(tmp_path):
    from fer.core.images import DecodeBudget

    path = tmp_path / "wide.png"
    Image.new("RGB", (1000, 800)).save(path)  # 3.1 MiB decoded (4 bytes a pixel), and as much for its copy
    with pytest.raises(ImageError, match=r"wide\.png: too large for this server: 1000×800 pixels take 6 MiB"):
        load_image(path, budget=DecodeBudget(5 * 2**20))
    assert load_image(path, budget=DecodeBudget(7 * 2**20)).shape == (800, 1000, 3)


def test_large_jpegs_are_costed_at_their_reduced_scale_and_progressive_ones_at_full_size():
    from fer.core.images import set_decode_scale

    photo = rgb_photo((4000, 3000))
    baseline = Image.open(io.BytesIO(encoded(photo, "JPEG")))
    assert set_decode_scale(baseline, 500) < 4000 * 3000  # drafted at 1/4 or 1/8: a fraction of the full image
    assert baseline.size[0] < 4000
    progressive = Image.open(io.BytesIO(encoded(photo, "JPEG", progressive=True)))
    assert set_decode_scale(progressive, 500) > 2 * 4000 * 3000  # every DCT coefficient of the full image is kept


def test_a_full_budget_makes_a_decode_wait_until_it_fits():
    import threading
    import time

    from fer.core.images import DecodeBudget

    budget = DecodeBudget(10, wait_s=5)
    events = []

    def second():
        with budget.hold(5, "second"):
            events.append(("decoding", budget.used))

    with budget.hold(8, "first"):
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.3)
        assert events == []  # 8 + 5 > 10: the second waits
        events.append("first done")
    waiting.join(timeout=5)
    assert events == ["first done", ("decoding", 5)] and budget.used == 0
    impatient = DecodeBudget(10, wait_s=0.2)
    with impatient.hold(8, "first"), pytest.raises(ImageError, match="late.png: the server is busy"), \
            impatient.hold(5, "late.png"):
        pass


@pytest.mark.parametrize("mode", ["16-bit", "palette with transparency", "bilevel"])
def test_modes_that_cannot_be_averaged_are_shrunk_strip_by_strip_like_the_whole(mode):
    """A large image of a mode PIL cannot shrink directly comes out as the whole image decoded then shrunk would."""
    from fer.core.images import averageable, downscale

    ramp = np.linspace(0, 1, 3000 * 2400).reshape(2400, 3000)
    image = {"16-bit": lambda: Image.fromarray((ramp * 40000 + 1000).astype(np.uint16)),
             "palette with transparency": lambda: rgb_photo((3000, 2400)).convert("P"),
             "bilevel": lambda: Image.fromarray(ramp > 0.5).convert("1")}[mode]()
    if mode.startswith("palette"):
        image.info["transparency"] = 0
    data = encoded(image, "PNG")
    shrunk = load_image(data, max_side=500)
    reference = downscale(np.asarray(averageable(Image.open(io.BytesIO(data))).convert("RGB")), 500)
    assert shrunk.shape == reference.shape == (400, 500, 3)
    assert np.abs(shrunk.astype(int) - reference.astype(int)).mean() < 3


def test_exif_orientation_is_applied_to_the_shrunk_image():
    photo = rgb_photo((4000, 3000))
    exif = photo.getexif()
    exif[0x0112] = 6  # rotated 90° clockwise: shown upright as 3000 wide, 4000 high
    image = load_image(encoded(photo, "JPEG", exif=exif), max_side=1000)
    assert image.shape == (1000, 750, 3)


def test_formats_outside_the_list_are_never_opened(tmp_path):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"  # Ghostscript would run it
    with pytest.raises(ImageError, match="not an image file this app can read"):
        load_image(eps, name="drawing.eps")


MEASURE = """
import io, resource, sys, threading
import numpy as np
from PIL import Image
from fer.core.images import SERVER_DECODES, load_image, return_freed_memory
return_freed_memory()
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
small = io.BytesIO()
Image.fromarray(np.zeros((64, 64), np.uint16)).save(small, "PNG")
load_image(small.getvalue(), budget=SERVER_DECODES)  # PIL's plugins and numpy's first allocations
idle = peak_mb()
threads = [threading.Thread(target=load_image, args=(path,), kwargs={"budget": SERVER_DECODES})
           for path in sys.argv[1:]]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(peak_mb() - idle)
"""


def test_four_88_megapixel_16bit_pngs_at_once_stay_within_300_mb(tmp_path):
    """The attack of issue 32: a 170 KB 16-bit PNG of 88 megapixels took the app to 1.64 GB, four to 4.83 GB. Here
    the library's decoding alone, in a fresh process: four at once add at most 300 MB to its peak."""
    import subprocess
    import sys

    from conftest import ROOT

    side = 9400  # 88.4 megapixels, under PIL's 89.5-megapixel bomb limit
    paths = []
    for i in range(4):
        values = np.zeros((side, side), np.uint16)
        values[i::97, :] = 60000
        paths.append(tmp_path / f"attack{i}.png")
        Image.fromarray(values).save(paths[-1], compress_level=1)
        del values
    assert max(p.stat().st_size for p in paths) < 2_000_000
    result = subprocess.run([sys.executable, "-c", MEASURE, *map(str, paths)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) <= 300, f"peak grew by {float(result.stdout):.0f} MB"
