"""Reading user images safely: any file a user may upload → an RGB uint8 array of bounded size."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


def load_image(source: str | Path | bytes, name: str | None = None, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode a file or bytes into an RGB uint8 array, downscaled so its longest side is ≤ ``max_side``.

    Handles grey, 16-bit, palette, CMYK, RGBA (composited on white), EXIF rotation and animated
    images (first frame). Raises :class:`ImageError` naming the problem for anything else.
    """
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "image")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{label}: the file is empty")
        data = path.read_bytes()
    else:
        data = bytes(source)
        if not data:
            raise ImageError(f"{label}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # PIL refuses more than Image.MAX_IMAGE_PIXELS (89.5 MP)
            image.seek(0)  # first frame of an animation
            if max(image.size) > 2 * max_side and image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))  # decode huge JPEGs at reduced scale
            image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image file this app can read (unknown format, or corrupt data)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{label}: too large to decode safely (over {Image.MAX_IMAGE_PIXELS / 1e6:.1f} "
                         f"megapixels; {_short(e)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"{label}: the image data is corrupt or truncated ({_short(e)})") from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{label}: {rgb.shape[1]}×{rgb.shape[0]} is too small to hold a face (min {MIN_SIDE} px)")
    return downscale(rgb, max_side)


def to_rgb(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode → RGB uint8 (16-bit scaled, alpha composited on white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(array.min()), float(array.max())
        grey = np.zeros(array.shape, np.uint8) if hi == lo else ((array - lo) * (255.0 / (hi - lo))).astype(np.uint8)
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
