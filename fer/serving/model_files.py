"""Model files and the one loader the app and the command-line tools use.

``.onnx`` (from ``python -m fer.export`` or ``fer.finetune``; the default) loads with onnxruntime, OpenCV and
numpy only; ``.pkl`` (an exported fastai learner) loads torch and fastai, which only the training install has.
This module imports neither: the chosen predictor's module is imported when a file is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from fer.core.card import (  # noqa: F401 - part of this module's interface
    DEFAULT_LEARNER,
    DEFAULT_MODEL,
    PROJECT_ROOT,
    ModelLoadError,
    card_path,
    default_model,
    describe_card,
    load_card,
)
from fer.core.extras import install_command, missing_extra

#: The shipped default model as ONNX (torch-free serving): the default itself.
DEFAULT_ONNX = DEFAULT_MODEL

#: Suffix → what such a file is, for messages.
MODEL_KINDS = {".pkl": "an exported fastai learner", ".onnx": "an ONNX model from `python -m fer.export`"}


class Predictor(Protocol):
    """What the recognizer and the app need from a model: class names, batched probabilities, a card."""

    classes: list[str]
    card: dict
    backend_used: str | None

    def predict_proba(self, faces: Sequence[np.ndarray], tta: str | bool = False) -> np.ndarray:
        """Class probabilities of 48×48 grey faces, shape (len(faces), n_classes), averaged over the views of the TTA
        mode ``tta``."""

    def describe(self) -> str:
        """One line about the model for users (architecture, input size, accuracy)."""


def needs_training_install(path: Path, module: str) -> ModelLoadError:
    """The :class:`ModelLoadError` for a ``.pkl`` in an install without ``module``: what to install, or the ONNX file
    to use instead."""
    return ModelLoadError(f"model file {path}: a .pkl learner needs the training install ({module} is missing): "
                          f"{install_command('train')}, or use its ONNX file {path.with_suffix('.onnx').name}, "
                          f"which does not")


def check_runtime(path: str | Path) -> None:
    """Before any work: :class:`ModelLoadError` naming the extra when this install cannot load ``path``'s kind at
    all (a ``.pkl`` without torch or fastai); nothing is imported."""
    import importlib.util

    path = Path(path)
    if path.suffix.lower() == ".pkl":
        missing = [m for m in ("torch", "fastai") if importlib.util.find_spec(m) is None]
        if missing:
            raise needs_training_install(path, missing[0])


def load_predictor(path: str | Path = DEFAULT_MODEL, backend: str = "auto") -> Predictor:
    """The predictor for a model file, chosen by its suffix: ``.onnx`` → :class:`fer.serving.onnx_predict.OnnxFacePredictor`
    (no torch), ``.pkl`` → :class:`fer.training.predict.FacePredictor` (``backend`` picks its runtime; needs the training
    install). Raises :class:`ModelLoadError` naming the file when it cannot be used, or when a ``.pkl`` meets an
    install without torch and fastai (the message names the extra to install)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from fer.serving.onnx_predict import OnnxFacePredictor

        return OnnxFacePredictor.load(path)
    if suffix == ".pkl":
        check_runtime(path)
        try:
            from fer.training.predict import FacePredictor
        except ModuleNotFoundError as e:
            if (missing := missing_extra(e)) is None:
                raise
            raise needs_training_install(path, missing[0]) from None

        return FacePredictor.load(path, backend)
    kinds = "; ".join(f"{s}: {what}" for s, what in MODEL_KINDS.items())
    raise ModelLoadError(f"model file {path}: unknown kind {path.suffix or '(no suffix)'!r} ({kinds})")
