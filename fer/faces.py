"""Face crops → the grey 48×48 uint8 batch every model takes (numpy and OpenCV only: shared by the
fastai predictor and the torch-free ONNX one)."""

from __future__ import annotations

from collections.abc import Callable
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


def batched_probabilities(faces: Sequence[np.ndarray], forward: Callable[[np.ndarray], np.ndarray], n_classes: int,
                          tta: bool = False, bs: int = 256) -> np.ndarray:
    """Class probabilities ``(len(faces), n_classes)`` from ``forward`` (a uint8 ``(N, 1, 48, 48)`` batch →
    probabilities), ``bs`` faces at a time; ``tta`` averages each face with its mirror image."""
    if len(faces) == 0:
        return np.zeros((0, n_classes), np.float32)
    out = []
    for i in range(0, len(faces), bs):
        batch = faces_array(faces[i:i + bs])
        probs = forward(batch)
        if tta:
            probs = (probs + forward(np.ascontiguousarray(batch[..., ::-1]))) / 2
        out.append(probs)
    return np.concatenate(out)
