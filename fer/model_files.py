"""Model files and the one loader the app and the command-line tools use.

``.onnx`` (from ``python -m fer.export`` or ``fer.finetune``) loads with onnxruntime, OpenCV and numpy only;
``.pkl`` (an exported fastai learner) loads torch and fastai. This module imports neither: the chosen
predictor's module is imported when a file is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from fer.card import (  # noqa: F401 - part of this module's interface
    DEFAULT_MODEL,
    PROJECT_ROOT,
    ModelLoadError,
    card_path,
    describe_card,
    load_card,
)

#: The shipped default model as ONNX (torch-free serving).
DEFAULT_ONNX = DEFAULT_MODEL.with_suffix(".onnx")

#: Suffix → what such a file is, for messages.
MODEL_KINDS = {".pkl": "an exported fastai learner", ".onnx": "an ONNX model from `python -m fer.export`"}


class Predictor(Protocol):
    """What the recognizer and the app need from a model: class names, batched probabilities, a card."""

    classes: list[str]
    card: dict
    backend_used: str | None

    def predict_proba(self, faces: Sequence[np.ndarray], tta: str | bool = False) -> np.ndarray: ...

    def describe(self) -> str: ...


def load_predictor(path: str | Path = DEFAULT_MODEL, backend: str = "auto") -> Predictor:
    """The predictor for a model file, chosen by its suffix: ``.onnx`` → :class:`fer.onnx_predict.OnnxFacePredictor`
    (no torch), ``.pkl`` → :class:`fer.predict.FacePredictor` (``backend`` picks its runtime).
    Raises :class:`ModelLoadError` naming the file when it cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from fer.onnx_predict import OnnxFacePredictor

        return OnnxFacePredictor.load(path)
    if suffix == ".pkl":
        from fer.predict import FacePredictor

        return FacePredictor.load(path, backend)
    kinds = "; ".join(f"{s}: {what}" for s, what in MODEL_KINDS.items())
    raise ModelLoadError(f"model file {path}: unknown kind {path.suffix or '(no suffix)'!r} ({kinds})")
