"""Face detection behind a small interface: OpenCV's Haar cascade by default, YuNet (DNN) when the
user supplies its ONNX file. Boxes are plain (x, y, w, h) in the input image's pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left (x, y), width and height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    def iou(self, other: "Box") -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clip(self, width: int, height: int) -> "Box":
        """The part of the box inside a width×height image (at least 1×1, always inside)."""
        x0 = min(max(self.x, 0), width - 1)
        y0 = min(max(self.y, 0), height - 1)
        x1 = min(max(self.x + self.w, x0 + 1), width)
        y1 = min(max(self.y + self.h, y0 + 1), height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def expand(self, margin: float) -> "Box":
        """Grow by ``margin`` × size on every side (FER-2013 faces include some forehead and chin)."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        return Box(self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy)

    def scale(self, factor: float) -> "Box":
        return Box(round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor))


def crop(image: np.ndarray, box: Box, margin: float = 0.0) -> np.ndarray:
    """The image inside ``box`` grown by ``margin``, clipped to the image; never empty."""
    h, w = image.shape[:2]
    b = box.expand(margin).clip(w, h)
    return image[b.y:b.y + b.h, b.x:b.x + b.w]


def to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY)


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray) -> list[Box]:
        """Every face in an RGB or grey uint8 image, as boxes in that image's pixels."""


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, run on a copy downscaled to ``detect_width`` pixels wide
    (webcam faces are large; this is ~4x faster at 640×480 and finds the same faces)."""

    def __init__(self, cascade: str | Path | None = None, detect_width: int = 320, scale_factor: float = 1.15,
                 min_neighbors: int = 6, min_face_fraction: float = 0.1):
        if cascade is None:
            if not hasattr(cv2, "data"):
                raise RuntimeError("this OpenCV build has no Haar cascades; install opencv-python-headless<5")
            cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(cascade))
        if self.cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {cascade}")
        self.detect_width, self.scale_factor = detect_width, scale_factor
        self.min_neighbors, self.min_face_fraction = min_neighbors, min_face_fraction

    def detect(self, image: np.ndarray) -> list[Box]:
        grey = to_grey(image)
        h, w = grey.shape[:2]
        factor = min(1.0, self.detect_width / w)
        small = cv2.resize(grey, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA) if factor < 1 else grey
        small = cv2.equalizeHist(small)
        min_side = max(20, round(min(small.shape[:2]) * self.min_face_fraction))
        found = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                              minSize=(min_side, min_side))
        return [Box(*map(int, f)).scale(1 / factor).clip(w, h) for f in found]


class YuNetFaceDetector:
    """OpenCV's YuNet DNN detector (``cv2.FaceDetectorYN``) from a user-supplied ONNX model file,
    e.g. face_detection_yunet_2023mar.onnx from the OpenCV model zoo."""

    def __init__(self, model: str | Path, score_threshold: float = 0.7, detect_width: int = 320):
        if not Path(model).is_file():
            raise FileNotFoundError(f"YuNet model {model}: no such file")
        self.net = cv2.FaceDetectorYN.create(str(model), "", (320, 240), score_threshold)
        self.detect_width = detect_width

    def detect(self, image: np.ndarray) -> list[Box]:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        h, w = bgr.shape[:2]
        factor = min(1.0, self.detect_width / w)
        small = cv2.resize(bgr, (round(w * factor), round(h * factor))) if factor < 1 else bgr
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self.net.detect(small)
        if faces is None:
            return []
        return [Box(*map(int, f[:4])).scale(1 / factor).clip(w, h) for f in faces]


def left_to_right(boxes: Sequence[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: (b.x, b.y))
