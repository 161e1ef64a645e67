"""Face crops → the grey 48×48 uint8 batch every model takes (numpy and OpenCV only: shared by the
fastai predictor and the torch-free ONNX one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Sequence

import cv2
import numpy as np

from fer.core.images import to_grey
from fer.core.labels import FACE_SIZE


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


#: Test-time augmentation modes: ``none``, ``flip`` (the face and its mirror image) and ``tencrop`` (four
#: corner crops and the centre crop, each resized back to 48×48, and their mirrors: ten views).
TTA_MODES = ("none", "flip", "tencrop")

#: Side of the ten-crop crops, about 0.9 × 48 (even, so the centre crop is centred).
TEN_CROP_SIDE = 44


def tta_mode(tta: str | bool | None) -> str:
    """``tta`` as one of :data:`TTA_MODES`: ``True`` is ``flip``, ``False`` and ``None`` are ``none``."""
    if tta is None or isinstance(tta, bool):
        return "flip" if tta else "none"
    if tta not in TTA_MODES:
        raise ValueError(f"TTA mode {tta!r}: choose one of {', '.join(TTA_MODES)}")
    return tta


def mirrored(batch: np.ndarray) -> np.ndarray:
    """The faces of a ``(N, 1, H, W)`` batch flipped left to right."""
    return np.ascontiguousarray(batch[..., ::-1])


def five_crops(batch: np.ndarray, side: int = TEN_CROP_SIDE) -> list[np.ndarray]:
    """The top-left, top-right, bottom-left, bottom-right and centre ``side``-pixel crops of a uint8
    ``(N, 1, 48, 48)`` batch, each resized back to 48×48 (bilinear)."""
    size = batch.shape[-1]
    far, mid = size - side, (size - side) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    return [np.stack([cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)
                      for face in batch[:, 0, y:y + side, x:x + side]])[:, None] for y, x in corners]


def tta_views(batch: np.ndarray, tta: str | bool | None) -> list[np.ndarray]:
    """The views of a uint8 ``(N, 1, 48, 48)`` batch whose probabilities the TTA mode ``tta`` averages."""
    mode = tta_mode(tta)
    if mode == "none":
        return [batch]
    crops = [batch] if mode == "flip" else five_crops(batch)
    return crops + [mirrored(c) for c in crops]


def batched_probabilities(faces: Sequence[np.ndarray], forward: Callable[[np.ndarray], np.ndarray], n_classes: int,
                          tta: str | bool | None = False, bs: int = 256) -> np.ndarray:
    """Class probabilities ``(len(faces), n_classes)`` from ``forward`` (a uint8 ``(N, 1, 48, 48)`` batch →
    probabilities), ``bs`` faces at a time, averaged over the views of the TTA mode ``tta`` (:func:`tta_views`)."""
    tta = tta_mode(tta)
    if len(faces) == 0:
        return np.zeros((0, n_classes), np.float32)
    out = []
    for i in range(0, len(faces), bs):
        views = tta_views(faces_array(faces[i:i + bs]), tta)
        out.append(np.mean([forward(v) for v in views], axis=0, dtype=np.float32))
    return np.concatenate(out)
