"""Face crops → the grey 48×48 uint8 batch every model takes (numpy and OpenCV only: shared by the
fastai predictor and the torch-free ONNX one)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from fer.images import to_grey
from fer.labels import FACE_SIZE


def to_face(image: np.ndarray) -> np.ndarray:
    """Any crop (grey, RGB or RGBA, uint8) → a 48×48 uint8 grey face."""
    image = to_grey(image)
    if image.shape[:2] != (FACE_SIZE, FACE_SIZE):
        shrinking = image.shape[0] > FACE_SIZE
        image = cv2.resize(image, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.ascontiguousarray(image, dtype=np.uint8)


def faces_array(faces: Sequence[np.ndarray]) -> np.ndarray:
    """Crops → the uint8 ``(N, 1, 48, 48)`` array of grey faces."""
    return np.stack([to_face(f) for f in faces])[:, None]
