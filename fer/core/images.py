"""Reading user images safely: any file a user may upload → an RGB uint8 array of bounded size."""

from __future__ import annotations

import io
import threading
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

#: Longest side an image is brought down to before detection (bounds memory and time).
MAX_SIDE = 1920
#: The photos of :func:`fer.load`'s ``analyze`` and of batch runs are read at full size, so boxes are in the
#: file's own pixels (``load_image`` refuses what PIL calls a decompression bomb, over 89.5 MP).
FULL_SIZE = 1 << 16
#: Smallest side that can hold a detectable face.
MIN_SIDE = 16
#: File endings taken as images when a folder is searched.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def images_under(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively, by :data:`IMAGE_SUFFIXES`), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageError(ValueError):
    """An input image cannot be used; the message says what is wrong with it."""


#: The formats :func:`load_image` opens (those of :data:`IMAGE_SUFFIXES`; JPEG includes phones' multi-picture MPO);
#: PIL's other plugins (EPS through Ghostscript, PSD, ...) are never tried on a user's file.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
#: Bytes per pixel PIL holds for a decoded image of each mode (4 for the others: RGB is stored as 32 bits).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
#: Modes PIL can shrink by averaging (:meth:`PIL.Image.Image.reduce`); the others (palettes, 16-bit, bilevel)
#: are converted strip by strip first.
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"})
#: Rows (of the shrunk image) converted at once when a mode cannot be shrunk directly.
_STRIP_ROWS = 64
#: Decoded pixels a server holds at once (:data:`SERVER_DECODES`): a PNG, GIF, TIFF or WebP is decoded whole
#: before it is shrunk, so an 88-megapixel 16-bit PNG of 191 KB takes 169 MiB however small its file.
MAX_DECODE_BYTES = 192 * 2**20


class DecodeBudget:
    """Bytes of decoded pixels that may be held at once by every :func:`load_image` sharing this budget (a
    server's requests): a decode waits until its image fits; one that could never fit is refused."""

    def __init__(self, limit_bytes: int, wait_s: float = 120.0):
        self.limit_bytes, self.wait_s, self.used = limit_bytes, wait_s, 0
        self._free = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int, label: str):
        """Reserve ``nbytes`` for one decode (``label``: the image, for messages); ImageError when it is over the
        limit or the budget stays full for ``wait_s`` seconds."""
        if nbytes > self.limit_bytes:
            raise ImageError(f"{label}: too large to decode here ({nbytes / 2**20:.0f} MiB of pixels decoded; "
                             f"this server decodes up to {self.limit_bytes / 2**20:.0f} MiB)")
        with self._free:
            if not self._free.wait_for(lambda: self.used + nbytes <= self.limit_bytes, self.wait_s):
                raise ImageError(f"{label}: the server is busy decoding other large images; try again")
            self.used += nbytes
        try:
            yield
        finally:
            if _trim is not None:
                _trim(0)  # what this decode freed goes back to the system before the next one starts
            with self._free:
                self.used -= nbytes
                self._free.notify_all()


#: The budget the app (and any server) shares among its requests: memory bounded by the work, not the file.
SERVER_DECODES = DecodeBudget(MAX_DECODE_BYTES)
#: Blocks this large or larger go back to the system as soon as they are freed (:func:`return_freed_memory`).
RETURN_FREED_MIB = 8  # over a full-HD RGB frame (6 MB): a video's per-frame arrays stay in the arenas (fast)
_trim = None  # glibc's malloc_trim, once return_freed_memory has been called


def return_freed_memory(threshold_mib: int = RETURN_FREED_MIB) -> bool:
    """Have the C library (glibc) give blocks of ``threshold_mib`` MiB or more back to the system as soon as they
    are freed, and what a decode with a budget freed in smaller blocks once it is done, instead of keeping it for
    reuse in one arena per thread: a server decoding images in several threads then holds about what it uses
    at once, not the peak of every thread (four 88-megapixel PNGs decoded one after another in four threads:
    583 MB → 201 MB). Call it once at the start of a server; False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    global _trim
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = libc.malloc_trim
        return bool(libc.mallopt(-3, threshold_mib << 20))  # -3: M_MMAP_THRESHOLD (a fixed one)
    except (OSError, AttributeError):
        return False


def load_image(source: str | Path | bytes, name: str | None = None, max_side: int = MAX_SIDE,
               budget: DecodeBudget | None = None) -> np.ndarray:
    """Decode a file or bytes into an RGB uint8 array, downscaled so its longest side is ≤ ``max_side``.

    Large images are decoded at reduced size where the format allows (JPEG's DCT scaling) and shrunk right
    after decoding otherwise, before any conversion; with a ``budget`` (:data:`SERVER_DECODES` in a server) the
    decoded pixels, known from the header before decoding, are reserved from it first. Handles grey, 16-bit,
    palette, CMYK, RGBA (composited on white), EXIF rotation and animated images (first frame). Raises
    :class:`ImageError` naming the problem for anything else.
    """
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "image")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{label}: the file is empty")
        opened = open(path, "rb")  # noqa: SIM115 - closed below; PIL reads only what it decodes
    else:
        if not source:
            raise ImageError(f"{label}: the file is empty")
        opened = io.BytesIO(bytes(source))
    try:
        with opened, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(opened, formats=FORMATS)  # PIL refuses more than Image.MAX_IMAGE_PIXELS (89.5 MP)
            image.seek(0)  # first frame of an animation
            width, height = image.size
            cost = set_decode_scale(image, max_side)
            if budget and cost > budget.limit_bytes:
                raise ImageError(f"{label}: too large for this server: {width}×{height} pixels take "
                                 f"{cost / 2**20:.0f} MiB to decode, over its {budget.limit_bytes / 2**20:.0f} MiB")
            with budget.hold(cost, label) if budget else nullcontext():
                small = reduced(image, max_side)
                orientation = image.getexif().get(ORIENTATION, 1)  # after decoding: a PNG's may follow its pixels
                if small is not image:
                    image.close()  # the full-size pixels go now, before any copy is made
                rgb = to_rgb(upright(small, orientation))
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image file this app can read (unknown format, or corrupt data)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{label}: too large to decode safely (over {Image.MAX_IMAGE_PIXELS / 1e6:.1f} "
                         f"megapixels; {_short(e)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{label}: the image data is corrupt or truncated ({_short(e)})") from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{label}: {rgb.shape[1]}×{rgb.shape[0]} is too small to hold a face (min {MIN_SIDE} px)")
    return downscale(rgb, max_side)


def set_decode_scale(image: Image.Image, max_side: int = MAX_SIDE) -> int:
    """Set a JPEG over twice ``max_side`` (opened, not yet loaded) to decode at reduced scale (``draft``), and
    return the memory decoding ``image`` then takes at most, from its header: a progressive JPEG's DCT
    coefficients of the full image, the pixels as PIL holds them and the copy made of them (shrunk first by
    :func:`reduced` when large)."""
    coefficients = 0
    if image.format in ("JPEG", "MPO"):
        if image.info.get("progressive") or image.info.get("progression"):
            coefficients = 2 * image.size[0] * image.size[1] * _sampled_components(image)
        if max(image.size) > 2 * max_side:
            image.draft("RGB", (max_side, max_side))
    width, height = image.size
    factor = shrink_factor(image.size, max_side)
    small = -(-width // factor) * -(-height // factor) * 4
    return coefficients + width * height * _MODE_BYTES.get(image.mode, 4) + small


def _sampled_components(jpeg: Image.Image) -> float:
    """How many full-resolution planes a JPEG's components make (3 for 4:4:4 colour, 1.5 for 4:2:0, 1 for grey)."""
    layers = getattr(jpeg, "layer", None) or [("", 1, 1, 0)] * len(jpeg.getbands())
    most = max(h * v for _, h, v, _ in layers)
    return sum(h * v for _, h, v, _ in layers) / most


def shrink_factor(size: tuple[int, int], max_side: int) -> int:
    """The whole factor that brings ``size`` to no less than ``max_side`` on its longest side (1: keep it)."""
    return max(1, max(size) // max_side)


def reduced(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` decoded and shrunk by averaging whole blocks of pixels, so its longest side stays between
    ``max_side`` and twice that (:func:`downscale` finishes the job); a mode that cannot be averaged (palette,
    16-bit, bilevel) is converted a strip at a time, so no full-size copy is ever made."""
    image.load()
    factor = shrink_factor(image.size, max_side)
    if factor == 1:
        return image
    if image.mode in _REDUCIBLE:
        return image.reduce(factor)
    width, height = image.size
    extrema = _extrema(image)
    rows = _STRIP_ROWS * factor
    out = None
    for top in range(0, height, rows):
        strip = averageable(image.crop((0, top, width, min(height, top + rows))), extrema).reduce(factor)
        if out is None:
            out = Image.new(strip.mode, (-(-width // factor), -(-height // factor)))
        out.paste(strip, (0, top // factor))
    return out


def averageable(image: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """``image`` in a mode whose pixels can be averaged: numeric modes scaled to grey (from ``extrema``, default
    their own), bilevel to grey, palettes to their colours (with alpha when they have transparency)."""
    if image.mode in _NUMERIC:
        return Image.fromarray(_scaled_grey(np.asarray(image), *(extrema or _extrema(image))))
    if image.mode == "1":
        return image.convert("L")
    has_alpha = image.mode in ("PA", "LA", "RGBA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _scaled_grey(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Numeric pixels → uint8 grey, ``lo`` → 0 and ``hi`` → 255, a strip at a time (no float copy of the image)."""
    grey = np.zeros(values.shape, np.uint8)
    if hi > lo:
        scale = np.float32(255.0 / (hi - lo))
        for top in range(0, values.shape[0], _STRIP_ROWS):
            strip = (values[top:top + _STRIP_ROWS].astype(np.float32) - np.float32(lo)) * scale
            grey[top:top + _STRIP_ROWS] = np.clip(strip, 0, 255).astype(np.uint8)
    return grey


#: The EXIF tag of a photo's orientation, and the transposition that turns each value upright.
ORIENTATION = 0x0112
_UPRIGHT = {2: [Image.Transpose.FLIP_LEFT_RIGHT], 3: [Image.Transpose.ROTATE_180],
            4: [Image.Transpose.FLIP_TOP_BOTTOM], 5: [Image.Transpose.TRANSPOSE], 6: [Image.Transpose.ROTATE_270],
            7: [Image.Transpose.TRANSVERSE], 8: [Image.Transpose.ROTATE_90]}


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned as its EXIF ``orientation`` says (read from the file before it was shrunk)."""
    for method in _UPRIGHT.get(orientation, []):
        image = image.transpose(method)
    return image


def _extrema(image: Image.Image) -> tuple[float, float] | None:
    """The lowest and highest value of a one-band numeric image (16-bit, I, F), for :func:`to_rgb`'s scaling."""
    if image.mode not in _NUMERIC:
        return None
    try:
        low, high = image.getextrema()
    except ValueError:  # a mode PIL measures no extrema of (big-endian 16-bit)
        values = np.asarray(image)
        low, high = values.min(), values.max()
    return float(low), float(high)


_NUMERIC = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def to_rgb(image: Image.Image, extrema: tuple[float, float] | None = None) -> np.ndarray:
    """A PIL image of any mode → RGB uint8 (16-bit and other numeric modes scaled from ``extrema``, default
    their own lowest to highest value; alpha composited on white)."""
    if image.mode in _NUMERIC:
        grey = _scaled_grey(np.asarray(image), *(extrema or _extrema(image)))
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def downscale(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Shrink (never enlarge) so the longest side is at most ``max_side``."""
    return _shrink(image, max_side / max(image.shape[:2]))


def resize_to_width(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk (never enlarged; INTER_AREA) to at most ``width`` pixels wide, and the factor used
    (≤ 1): a box found in the small image is ``box / factor`` in ``image``."""
    factor = min(1.0, width / image.shape[1])
    return _shrink(image, factor), factor


def _shrink(image: np.ndarray, factor: float) -> np.ndarray:
    if factor >= 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)


def to_grey(image: np.ndarray) -> np.ndarray:
    """Grey, RGB or RGBA uint8 → grey uint8 (grey input comes back as it is)."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY)


def as_rgb_frame(frame: np.ndarray | None) -> np.ndarray | None:
    """A streamed frame (RGB, RGBA or grey; any dtype) → RGB uint8, or None if unusable."""
    if frame is None:
        return None
    frame = np.asarray(frame)
    if frame.size == 0 or frame.ndim not in (2, 3) or min(frame.shape[:2]) < MIN_SIDE:
        return None
    if frame.dtype != np.uint8:
        values = np.nan_to_num(frame.astype(np.float64))
        top = values.max()
        scale = 255.0 if frame.dtype.kind == "f" and top <= 1.0 else (255.0 / top if top > 255 else 1.0)
        frame = np.clip(values * scale, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[..., 0], cv2.COLOR_GRAY2RGB)
    if frame.shape[2] != 3:
        return None
    return np.ascontiguousarray(frame)


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 120 else text[:117] + "..."


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an encoded image as its header announces it, nothing decoded (a pixel cap can refuse it
    before :func:`load_image` spends the memory); None when the header cannot be read (:func:`load_image` says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Exception:  # noqa: BLE001 - any unreadable header: load_image names the problem
        return None
