"""Classifying faces with an exported ``.onnx`` model: onnxruntime, OpenCV and numpy only (no torch, no fastai).

The model file (written by ``python -m fer.export`` or ``fer.finetune``) takes uint8 grey faces
``(N, 1, 48, 48)`` and returns logits: the learner's preprocessing (scale, resize, normalise) is compiled in.
Its metadata holds the class list, the model card and, once calibrated (``python -m fer.evaluate --calibrate``),
the temperature the logits are divided by before the softmax, so the file is all a server (or the page) needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from fer.core.card import ModelLoadError, describe_card, load_card
from fer.serving.faces import batched_probabilities, faces_array

#: ONNX metadata keys written by :mod:`fer.export`.
CLASSES_KEY, CARD_KEY = "fer.classes", "fer.card"  # metadata keys of every exported model: never rename
#: ONNX metadata key of the calibration temperature (:mod:`fer.evaluation.calibration`); absent: 1.
TEMPERATURE_KEY = "fer.temperature"

#: Threads of the sessions made without an explicit count (0: one per core); :func:`fer.serving.batch.use_threads`
#: sets it in each worker process of a batch run.
SESSION_THREADS = 0


def inference_session(model: bytes | str | Path, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU for an ONNX file or its bytes; ``threads``: its intra-op
    threads (None: :data:`SESSION_THREADS`; 0: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = SESSION_THREADS if threads is None else threads
    options.log_severity_level = 3
    # idle pool threads would busy-wait after each run and steal the CPU from detection and drawing
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class ModelMetadataError(ValueError):
    """An ONNX model that loads but whose fer metadata cannot be used (classes, temperature)."""


def read_temperature(metadata: dict[str, str]) -> float:
    """The calibration temperature in a model's ONNX metadata (1 when it has none); :class:`ModelMetadataError`
    when it is not a positive number."""
    text = metadata.get(TEMPERATURE_KEY, "1")
    try:
        temperature = float(text)
    except ValueError:
        temperature = float("nan")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ModelMetadataError(f"its {TEMPERATURE_KEY} metadata is {text!r}, not a positive number")
    return temperature


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits, shifted by each row's maximum so it cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class OnnxFacePredictor:
    """Same interface as :class:`fer.training.predict.FacePredictor` (``classes``, ``card``, ``predict_proba``,
    ``describe``) for an exported ``.onnx`` model. Probabilities are ``softmax(logits / temperature)``, the
    temperature read from the file's metadata (1 for an uncalibrated model)."""

    backend_used = "onnx"

    def __init__(self, model: bytes | str | Path, threads: int | None = None, card: dict | None = None):
        self.session = inference_session(model, threads)
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.card: dict = json.loads(metadata[CARD_KEY]) if CARD_KEY in metadata else dict(card or {})
        classes = json.loads(metadata[CLASSES_KEY]) if CLASSES_KEY in metadata else self.card.get("classes")
        if not classes:
            raise ModelMetadataError(f"no class list in its metadata ({CLASSES_KEY}) or card")
        self.classes: list[str] = list(classes)
        self.temperature = read_temperature(metadata)
        self.input_name = self.session.get_inputs()[0].name
        n_out = self.session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.classes):
            raise ModelMetadataError(f"{n_out} outputs for {len(self.classes)} classes")

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> "OnnxFacePredictor":
        """Load an exported ``.onnx`` file; :class:`ModelLoadError` naming it when it is missing or unusable."""
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"model file {path}: not found. Export one with `python -m fer.export "
                                 f"{path.with_suffix('.pkl')}`")
        try:
            return cls(path, threads, card=load_card(path))
        except ModelMetadataError as e:
            raise ModelLoadError(f"model file {path}: {e}") from None
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors are pybind classes without a common base
            raise ModelLoadError(f"model file {path}: not a usable fer ONNX model — truncated, corrupt or another "
                                 f"kind of file ({type(e).__name__}: {str(e)[:200]})") from None

    def predict_proba(self, faces: Sequence[np.ndarray], tta: str | bool = False, bs: int = 256) -> np.ndarray:
        """Class probabilities, shape (len(faces), n_classes), averaged over the views of the TTA mode ``tta``
        (``none``, ``flip`` or ``tencrop``; ``True`` is ``flip``: :func:`fer.serving.faces.tta_views`)."""
        return batched_probabilities(faces, self._forward, len(self.classes), tta, bs)

    def logits(self, faces: Sequence[np.ndarray], bs: int = 256) -> np.ndarray:
        """The model's raw logits ``(len(faces), n_classes)``, before the temperature (what calibration fits)."""
        out = [self._logits(faces_array(faces[i:i + bs])) for i in range(0, len(faces), bs)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0].astype(np.float32)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return softmax(self._logits(batch) / np.float32(self.temperature))

    def describe(self) -> str:
        """One line about the loaded model for users."""
        return describe_card(self.card, self.classes)
