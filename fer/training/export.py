"""A learner as ONNX for torch-free serving: the validation preprocessing compiled in, the class list and card
in its metadata (with the calibration temperature the card records, ``fer.temperature``), checked against ``learn.predict`` before it is written; the command is ``python -m fer.export``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from fer.core.card import card_path, card_temperature
from fer.core.fileio import write_bytes_atomic, write_json_atomic
from fer.core.labels import FACE_SIZE
from fer.serving.onnx_predict import CARD_KEY, CLASSES_KEY, TEMPERATURE_KEY, OnnxFacePredictor
from fer.training.preprocess import inference_module, validation_pipeline
from fer.training.runtime import onnx_bytes

#: The largest difference in class probabilities from ``learn.predict`` an exported file may show.
TOLERANCE = 1e-4
#: Faces the export is checked on (random, flat, gradient and mirrored ones).
N_CHECK_FACES = 8


class ExportError(RuntimeError):
    """The learner cannot be exported faithfully; the message names the file."""




def check_faces(n: int = N_CHECK_FACES, seed: int = 0):
    """Deterministic 48×48 uint8 faces covering the input range."""
    import numpy as np


    rng = np.random.default_rng(seed)
    faces = [rng.integers(0, 256, (FACE_SIZE, FACE_SIZE), dtype=np.uint8) for _ in range(n - 3)]
    ramp = np.tile(np.linspace(0, 255, FACE_SIZE).astype(np.uint8), (FACE_SIZE, 1))
    return [*faces, np.zeros((FACE_SIZE, FACE_SIZE), np.uint8), np.full((FACE_SIZE, FACE_SIZE), 255, np.uint8), ramp]


def learner_onnx(learn) -> tuple[bytes, dict]:
    """The learner's validation preprocessing + model as ONNX bytes (uint8 faces in, logits out), and the
    preprocessing's description for the card."""
    import torch


    pipeline = validation_pipeline(learn)
    preprocess = inference_module(pipeline)
    if preprocess is None:
        raise ExportError("its validation pipeline holds a transform that cannot be compiled "
                          f"({', '.join(type(t).__name__ for t in pipeline.fs)})")
    model = copy.deepcopy(learn.model).cpu().to(memory_format=torch.contiguous_format).eval()
    net = torch.nn.Sequential(preprocess, model).eval()
    example = torch.randint(0, 256, (2, 1, FACE_SIZE, FACE_SIZE), dtype=torch.uint8)
    with torch.no_grad():
        return onnx_bytes(net, example), preprocessing_card(preprocess)


def preprocessing_card(preprocess) -> dict:
    """What the compiled-in preprocessing does, for the card."""
    return {"input": "uint8 grey faces, shape (N, 1, 48, 48)", "scale": 1 / preprocess.div,
            "resize": {"size": list(preprocess.size), "mode": "bilinear", "align_corners": preprocess.align_corners},
            "mean": preprocess.mean.flatten().tolist(), "std": preprocess.std.flatten().tolist(),
            "output": "logits (softmax gives the class probabilities)"}


def with_metadata(model_bytes: bytes, classes: list[str], card: dict) -> bytes:
    """The ONNX model with the class list and card in its metadata (``fer.classes``, ``fer.core.card``), and the
    card's calibration temperature (``fer.temperature``) when it records one."""
    import onnx


    model = onnx.load_from_string(model_bytes)
    props = {CLASSES_KEY: json.dumps(classes), CARD_KEY: json.dumps(card)}
    if "calibration" in card:
        props[TEMPERATURE_KEY] = repr(card_temperature(card))
    onnx.helper.set_model_props(model, props)
    model.producer_name, model.doc_string = "fer", "facial expression recognition: uint8 faces (N,1,48,48) -> logits"
    return model.SerializeToString()


def largest_difference(learn, model_bytes: bytes) -> float:
    """The largest difference between the ONNX model's probabilities and ``learn.predict``'s on check faces."""
    import numpy as np


    faces = check_faces()
    predictor = OnnxFacePredictor(model_bytes)
    predictor.temperature = 1.0  # learn.predict knows no calibration temperature
    onnx_probs = predictor.predict_proba(faces)
    with learn.no_bar():
        fastai_probs = np.stack([learn.predict(face)[2].float().numpy() for face in faces])
    return float(np.abs(onnx_probs - fastai_probs).max())


def export_onnx(learn, out: str | Path, card: dict) -> Path:
    """Write ``out`` (``.onnx``) for ``learn``, checked against ``learn.predict``, and add an ``onnx`` entry
    to the JSON card beside it. ``card`` is the learner's card (stored in the ONNX metadata)."""

    out = Path(out)
    classes = [str(c) for c in learn.dls.vocab]
    try:
        raw, preprocessing = learner_onnx(learn)
    except ExportError as e:
        raise ExportError(f"{out}: {e}; nothing written") from None
    card = {**{k: v for k, v in card.items() if k != "onnx"}, "classes": classes, "preprocessing": preprocessing}
    model_bytes = with_metadata(raw, classes, card)
    error = largest_difference(learn, model_bytes)
    if not error <= TOLERANCE:
        raise ExportError(f"{out}: the ONNX model's probabilities differ from learn.predict by {error:.1e} "
                          f"(allowed {TOLERANCE:.0e}); nothing written")
    write_bytes_atomic(out, model_bytes)
    card["onnx"] = {"file": out.name, "sha256": hashlib.sha256(model_bytes).hexdigest(), "bytes": len(model_bytes),
                    "max_difference_from_learn_predict": error}
    write_json_atomic(card_path(out), card)
    return out
