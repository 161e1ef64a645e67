"""Model files and the one loader the app and the command-line tools use.

``.onnx`` (from ``python -m fer.export`` or ``fer.finetune``) loads with onnxruntime, OpenCV and numpy only;
``.pkl`` (an exported fastai learner) loads torch and fastai. This module imports neither: the chosen
predictor's module is imported when a file is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

#: Where the shipped default models live (relative to the project root).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = PROJECT_ROOT / "exports" / "fer2013_effnet_lite0.pkl"
DEFAULT_ONNX = DEFAULT_MODEL.with_suffix(".onnx")

#: Suffix → what such a file is, for messages.
MODEL_KINDS = {".pkl": "an exported fastai learner", ".onnx": "an ONNX model from `python -m fer.export`"}


class ModelLoadError(RuntimeError):
    """The model file is missing, truncated or not a model; the message names the path."""


class Predictor(Protocol):
    """What the recognizer and the app need from a model: class names, batched probabilities, a card."""

    classes: list[str]
    card: dict
    backend_used: str | None

    def predict_proba(self, faces: Sequence[np.ndarray], tta: bool = False) -> np.ndarray: ...

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


def card_path(model_path: str | Path) -> Path:
    """The JSON model card beside a model file (shared by ``NAME.pkl`` and ``NAME.onnx``)."""
    return Path(model_path).with_suffix(".json")


def load_card(model_path: str | Path) -> dict:
    """The JSON card beside ``model_path``, or ``{}`` when there is none."""
    path = card_path(model_path)
    return json.loads(path.read_text()) if path.exists() else {}


def describe_card(card: dict, classes: Sequence[str]) -> str:
    """One line about a model for users: architecture, input size and accuracy from its card."""
    if not card:
        return f"{len(classes)} classes: {', '.join(classes)}"
    acc = card.get("test_accuracy") or card.get("valid_accuracy")
    which = "PrivateTest" if card.get("test_accuracy") else "PublicTest (valid)"
    return (f"{card.get('arch', '?')} at {card.get('input_size', '?')} px, "
            + (f"{acc:.1%} accuracy on FER-2013 {which}" if acc else "accuracy unknown"))
