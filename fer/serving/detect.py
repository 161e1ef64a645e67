"""Face detection behind one small interface, ``detect(image) -> list[Box]``: YuNet (OpenCV's DNN face
detector, shipped in ``fer/models``) by default, OpenCV's Haar cascade as the fallback and for comparison.
Boxes are (x, y, w, h) in the input image's pixels; YuNet's also carry five landmarks and a score.

Both detectors are safe to call from several threads at once (Gradio serves requests in a thread pool):
OpenCV's detector objects keep per-call state (YuNet's input size), so each thread gets its own."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer.core.card import MODELS
from fer.core.images import resize_to_width, to_grey

#: The detectors :func:`make_detector` knows, default first.
DETECTORS = ("yunet", "haar")
#: YuNet-n (Apache-2.0, notice beside it), packaged with fer.
YUNET_MODEL = MODELS / "yunet" / "yunet_n_320_320.onnx"
#: YuNet's landmarks, in its order ("right" is the person's right: the eye on the image's left).
LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left (x, y), width and height; ``landmarks`` (five (x, y) points,
    :data:`LANDMARK_NAMES`) and ``score`` when the detector gives them. Equality compares the box only."""

    x: int
    y: int
    w: int
    h: int
    landmarks: tuple[Point, ...] = field(default=(), compare=False)
    score: float | None = field(default=None, compare=False)

    @property
    def area(self) -> int:
        """Width × height in pixels (0 for an empty box)."""
        return max(0, self.w) * max(0, self.h)

    @property
    def center(self) -> Point:
        """The box's centre, (x, y)."""
        return self.x + self.w / 2, self.y + self.h / 2

    def intersection(self, other: "Box") -> int:
        """The area the two boxes share."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        return ix * iy

    def iou(self, other: "Box") -> float:
        """Intersection over union with ``other``, 0 to 1."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def overlap(self, other: "Box") -> float:
        """The share of the smaller box inside the other (1: one lies within the other)."""
        smaller = min(self.area, other.area)
        return self.intersection(other) / smaller if smaller > 0 else 0.0

    def clip(self, width: int, height: int) -> "Box":
        """The part of the box inside a width×height image (at least 1×1, always inside)."""
        x0 = min(max(self.x, 0), width - 1)
        y0 = min(max(self.y, 0), height - 1)
        x1 = min(max(self.x + self.w, x0 + 1), width)
        y1 = min(max(self.y + self.h, y0 + 1), height)
        return replace(self, x=x0, y=y0, w=x1 - x0, h=y1 - y0)

    def expand(self, margin: float) -> "Box":
        """Grow by ``margin`` × size on every side."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        return replace(self, x=self.x - dx, y=self.y - dy, w=self.w + 2 * dx, h=self.h + 2 * dy)

    def square(self) -> "Box":
        """The square with the same centre whose side is the longer of width and height."""
        side = max(self.w, self.h)
        return replace(self, x=self.x - (side - self.w) // 2, y=self.y - (side - self.h) // 2, w=side, h=side)

    def scale(self, factor: float) -> "Box":
        """The box (and its landmarks) with every coordinate multiplied by ``factor``."""
        return Box(round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor),
                   tuple((px * factor, py * factor) for px, py in self.landmarks), self.score)

    def shift(self, dx: int, dy: int) -> "Box":
        """The same box moved by (dx, dy), e.g. from a region's coordinates to the whole image's."""
        return Box(self.x + dx, self.y + dy, self.w, self.h,
                   tuple((px + dx, py + dy) for px, py in self.landmarks), self.score)

    def roll_angle(self) -> float:
        """The head's in-plane tilt in degrees from the eye landmarks (0 when upright or unknown)."""
        if len(self.landmarks) < 2:
            return 0.0
        (rx, ry), (lx, ly) = self.landmarks[:2]
        return math.degrees(math.atan2(ly - ry, lx - rx))

    def as_dict(self) -> dict:
        """A JSON-ready description: box, landmarks by name, score."""
        out: dict = {"x": self.x, "y": self.y, "w": self.w, "h": self.h}
        if self.landmarks:
            out["landmarks"] = {n: [round(px, 1), round(py, 1)] for n, (px, py) in zip(LANDMARK_NAMES, self.landmarks)}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        return out


@dataclass(frozen=True)
class CropSpec:
    """How a face is cut out of a photo for the classifier: ``margin`` × box size added on every side, made
    ``square`` first or not, and ``align``\\ ed (rotated so the eyes are level) when the box has landmarks.
    The defaults won on ``benchmarks/crop_accuracy.py`` (docs/results/detector/crop_accuracy.json): a square
    around YuNet's box with no margin matches FER-2013's framing best (−7.7 points against the plain 48 px
    faces, against −15.1 at a 0.1 margin); aligning the eyes moved accuracy by −0.6 (upright) and +0.1
    (tilted 10–25°) points, so it stays off."""

    margin: float = 0.0
    square: bool = True
    align: bool = False


def crop(image: np.ndarray, box: Box, margin: float = 0.0) -> np.ndarray:
    """The image inside ``box`` grown by ``margin``, clipped to the image; never empty."""
    h, w = image.shape[:2]
    b = box.expand(margin).clip(w, h)
    return image[b.y:b.y + b.h, b.x:b.x + b.w]


def face_crop(image: np.ndarray, box: Box, spec: CropSpec = CropSpec()) -> np.ndarray:
    """The face in ``box`` as the classifier should see it (:class:`CropSpec`); never empty.

    Without alignment this is a plain slice of the image (clipped at its edges); with it, one affine warp
    rotates the region about the face's centre so the eyes are level (pixels outside the image are repeated)."""
    region = (box.square() if spec.square else box).expand(spec.margin)
    angle = box.roll_angle() if spec.align else 0.0
    if abs(angle) < 1.0:  # upright: no resampling
        return crop(image, region)
    cx, cy = region.center
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    matrix[:, 2] -= (region.x, region.y)  # the rotated region's top-left → (0, 0)
    return cv2.warpAffine(image, matrix, (max(region.w, 1), max(region.h, 1)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)


class _PerThread:
    """One OpenCV object per thread, made on first use by ``make``."""

    def __init__(self, make: Callable[[], object]):
        self.make, self.local = make, threading.local()

    def get(self):
        obj = getattr(self.local, "obj", None)
        if obj is None:
            obj = self.local.obj = self.make()
        return obj


class FaceDetector(Protocol):
    """What a face detector does: boxes of the faces in an image."""
    def detect(self, image: np.ndarray) -> list[Box]:
        """Every face in an RGB or grey uint8 image, as boxes in that image's pixels, left to right."""


class YuNetFaceDetector:
    """YuNet (``cv2.FaceDetectorYN``) run on a copy brought down to ``detect_width`` pixels wide. Boxes
    carry five landmarks and a score; faces under ``min_face`` pixels (shorter side, in the input image)
    or scoring under ``score_threshold`` are left out."""

    name = "YuNet, OpenCV's DNN face detector"

    def __init__(self, model: str | Path = YUNET_MODEL, detect_width: int = 320, score_threshold: float = 0.6,
                 min_face: int = 0, nms_threshold: float = 0.3):
        if not Path(model).is_file():
            raise FileNotFoundError(f"YuNet model {model}: no such file")
        self.model, self.detect_width = str(model), detect_width
        self.score_threshold, self.min_face, self.nms_threshold = score_threshold, min_face, nms_threshold
        self._nets = _PerThread(self._load)
        self._nets.get()  # a broken file fails here, not on the first frame

    def _load(self):
        try:
            return cv2.FaceDetectorYN.create(self.model, "", (320, 320), self.score_threshold, self.nms_threshold)
        except cv2.error as e:
            raise RuntimeError(f"YuNet model {self.model}: OpenCV cannot load it ({str(e).strip()[:200]})") from None

    def detect(self, image: np.ndarray) -> list[Box]:
        """Every face in an RGB or grey uint8 image, as boxes (with landmarks and scores) in its pixels, left to
        right."""
        h, w = image.shape[:2]
        small, factor = resize_to_width(_to_bgr(image), self.detect_width)
        net = self._nets.get()
        net.setInputSize((small.shape[1], small.shape[0]))
        _, faces = net.detect(small)
        boxes = []
        for f in [] if faces is None else faces:
            points = tuple((float(f[i]), float(f[i + 1])) for i in range(4, 14, 2))
            box = Box(round(f[0]), round(f[1]), round(f[2]), round(f[3]), points, float(f[14])).scale(1 / factor)
            if min(box.w, box.h) >= self.min_face:
                boxes.append(box.clip(w, h))
        return left_to_right(boxes)


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, run on a copy brought down to ``detect_width`` pixels wide.
    Faces smaller than ``min_face_fraction`` of the image's shorter side, or ``min_face`` pixels, are left out."""

    name = "OpenCV's Haar cascade"

    def __init__(self, cascade: str | Path | None = None, detect_width: int = 320, scale_factor: float = 1.15,
                 min_neighbors: int = 6, min_face_fraction: float = 0.1, min_face: int = 0):
        if cascade is None:
            if not hasattr(cv2, "data"):
                raise RuntimeError("this OpenCV build has no Haar cascades; install opencv-python-headless<5")
            cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade_file = str(cascade)
        self.detect_width, self.scale_factor = detect_width, scale_factor
        self.min_neighbors, self.min_face_fraction, self.min_face = min_neighbors, min_face_fraction, min_face
        self._cascades = _PerThread(self._load)
        self._cascades.get()

    def _load(self) -> cv2.CascadeClassifier:
        cascade = cv2.CascadeClassifier(self.cascade_file)
        if cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {self.cascade_file}")
        return cascade

    def detect(self, image: np.ndarray) -> list[Box]:
        """Every face in an RGB or grey uint8 image, as boxes in its pixels, left to right."""
        grey = to_grey(image)
        h, w = grey.shape[:2]
        small, factor = resize_to_width(grey, self.detect_width)
        small = cv2.equalizeHist(small)
        min_side = max(20, round(min(small.shape[:2]) * self.min_face_fraction), round(self.min_face * factor))
        found = self._cascades.get().detectMultiScale(small, scaleFactor=self.scale_factor,
                                                      minNeighbors=self.min_neighbors, minSize=(min_side, min_side))
        return left_to_right(Box(*map(int, f)).scale(1 / factor).clip(w, h) for f in found)


def left_to_right(boxes: Iterable[Box]) -> list[Box]:
    """``boxes`` sorted by their left edge (then top)."""
    return sorted(boxes, key=lambda b: (b.x, b.y))


def make_detector(name: str = "yunet", detect_width: int = 320, min_face: int = 0,
                  score_threshold: float | None = None) -> FaceDetector:
    """A detector by name (:data:`DETECTORS`); ``score_threshold`` applies to YuNet only."""
    if name == "yunet":
        extra = {} if score_threshold is None else {"score_threshold": score_threshold}
        return YuNetFaceDetector(detect_width=detect_width, min_face=min_face, **extra)
    if name == "haar":
        return HaarFaceDetector(detect_width=detect_width, min_face=min_face)
    raise ValueError(f"detector {name!r}: choose one of {', '.join(DETECTORS)}")
