"""Learners exported before the package moved still load and train on, and new exports name no fer module.

tests/data/premove_tiny.pkl was exported by fer's flat layout (``fer/distill.py``, ``fer/preprocess.py``...; a
worktree at the commit before the move): a 1-epoch mobilenetv3_small_050 from scratch on the synthetic faces,
with the strong augmentation and FER+ votes, so its pickle names ``fer.distill.accuracy`` and
``fer.preprocess``'s transforms."""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TINY_ARCH, run_cli

PREMOVE = ROOT / "tests" / "data" / "premove_tiny.pkl"
SHIPPED = ROOT / "exports" / "fer2013_effnet_lite0.pkl"


def pickled_globals(pkl: Path) -> set[str]:
    """``module.name`` of every class and function a learner's pickle refers to."""
    with zipfile.ZipFile(pkl) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    strings, found = [], set()
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if isinstance(arg, str):
            strings.append(arg)
        if op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
    return found


def faces(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(n)]


def test_the_premove_learner_names_the_old_modules():
    names = pickled_globals(PREMOVE)
    assert "fer.distill.accuracy" in names and any(n.startswith("fer.preprocess.") for n in names)


def test_a_learner_exported_before_the_move_loads_and_classifies():
    from fer.training.predict import FacePredictor

    predictor = FacePredictor.load(PREMOVE)
    probs = predictor.predict_proba(faces())
    assert probs.shape == (4, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert predictor.classes == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped .pkl in this checkout")
def test_the_shipped_learner_loads_and_agrees_with_the_packaged_onnx():
    from fer.core.card import DEFAULT_MODEL
    from fer.serving.onnx_predict import OnnxFacePredictor
    from fer.training.predict import FacePredictor

    learner, onnx = FacePredictor.load(SHIPPED), OnnxFacePredictor.load(DEFAULT_MODEL)
    assert learner.classes == onnx.classes
    assert np.abs(learner.predict_proba(faces()) - onnx.predict_proba(faces())).max() < 1e-3


def test_a_premove_learner_trains_on_blends_and_the_new_export_names_no_fer_module(tiny_data, tmp_path):
    tuned = tmp_path / "tuned.pkl"
    run_cli("-m", "fer.finetune", "--data", str(tiny_data), "--arch", TINY_ARCH, "--init-from", str(PREMOVE),
            "--size", "48", "--epochs", "1", "--freeze-epochs", "0", "--bs", "16", "--augment", "strong",
            "--out", str(tuned), "--run-dir", str(tmp_path / "run"))
    assert not {n for n in pickled_globals(tuned) if n.startswith("fer.")}
    blended = tmp_path / "blend.pkl"
    run_cli("-m", "fer.blend", str(tuned), "--base", str(PREMOVE), "--alpha", "0.5", "--out", str(blended))
    assert blended.is_file() and blended.with_suffix(".onnx").is_file()
    assert not {n for n in pickled_globals(blended) if n.startswith("fer.")}
