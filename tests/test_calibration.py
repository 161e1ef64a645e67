"""Calibrated probabilities (fer/evaluation/calibration.py, `python -m fer.evaluate --calibrate`): the temperature
is fitted, written into the ONNX file's metadata without touching its graph, and applied by every predictor."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import run_cli

from fer.core.card import DEFAULT_MODEL
from fer.evaluation.calibration import (
    cross_entropy,
    fit_temperature,
    reliability_bins,
    scaled_probabilities,
    temperature_floor,
    write_calibration,
)
from fer.serving.model_files import ModelLoadError, load_predictor
from fer.serving.onnx_predict import TEMPERATURE_KEY, OnnxFacePredictor, softmax

FACES = [np.random.default_rng(i).integers(0, 256, (48, 48), dtype=np.uint8) for i in range(6)]


@pytest.fixture
def model_copy(tmp_path):
    """The shipped model and its card, copied (their calibration left out of the card)."""
    if not DEFAULT_MODEL.exists():
        pytest.skip("no shipped .onnx")
    onnx = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL, onnx)
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    onnx.with_suffix(".json").write_text(json.dumps(card))
    return onnx


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 7))
    truth = 2.0
    drawn = [rng.choice(7, p=p) for p in scaled_probabilities(logits, truth)]
    targets = np.eye(7)[drawn]
    fitted = fit_temperature(logits, targets)
    assert fitted == pytest.approx(truth, rel=0.05)
    assert cross_entropy(logits, targets, fitted) < cross_entropy(logits, targets, 1.0)


def test_the_floor_finds_the_temperature_that_calibrates_and_bounds_every_other():
    from fer.evaluation.suite import expected_calibration_error

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (20000, 7))
    drawn = [rng.choice(7, p=p) for p in scaled_probabilities(logits, 1.5)]
    truth = np.eye(7)[drawn]
    floor = temperature_floor(logits, truth)
    assert floor["temperature"] == pytest.approx(1.5, rel=0.1) and floor["ece"] < 0.02
    probs = scaled_probabilities(logits, 1.0)
    assert floor["ece"] <= expected_calibration_error(probs, truth[np.arange(len(truth)), probs.argmax(1)] == 1)


def test_reliability_bins_hold_every_face_once():
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.52, 0.48], [0.9, 0.1]])
    bins = reliability_bins(probs, np.array([1, 0, 1, 1], float), bins=10)
    assert sum(b["n"] for b in bins) == 4
    assert [(b["low"], b["n"], b["accuracy"]) for b in bins] == [(0.5, 2, 0.5), (0.9, 2, 1.0)]


def test_the_temperature_is_written_into_the_metadata_and_the_graph_is_untouched(model_copy):
    onnx = pytest.importorskip("onnx")
    before = OnnxFacePredictor.load(model_copy)
    graph = onnx.load(str(model_copy)).graph.SerializeToString()
    write_calibration(model_copy, {"temperature": 2.5, "labels": "fer2013"})
    after = load_predictor(model_copy)
    assert after.temperature == 2.5 and onnx.load(str(model_copy)).graph.SerializeToString() == graph
    logits = before.logits(FACES)
    assert np.array_equal(after.logits(FACES), logits)
    assert np.allclose(after.predict_proba(FACES), softmax(logits / 2.5), atol=1e-6)
    assert np.array_equal(after.predict_proba(FACES).argmax(1), before.predict_proba(FACES).argmax(1))
    card = json.loads(model_copy.with_suffix(".json").read_text())
    assert card["calibration"]["temperature"] == 2.5
    import hashlib
    assert card["onnx"]["sha256"] == hashlib.sha256(model_copy.read_bytes()).hexdigest()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "warm"])
def test_a_model_with_a_bad_temperature_is_refused_naming_the_file(model_copy, value):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(model_copy))
    props = {p.key: p.value for p in proto.metadata_props} | {TEMPERATURE_KEY: value}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    model_copy.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelLoadError, match=f"{model_copy}.*{TEMPERATURE_KEY}"):
        load_predictor(model_copy)


@pytest.mark.slow
def test_calibrate_command_fits_reports_and_writes(tiny_model, tiny_csv, tmp_path):
    from test_training import write_ferplus_votes

    model = tmp_path / "tiny.onnx"
    shutil.copy(tiny_model.with_suffix(".onnx"), model)
    votes = write_ferplus_votes(tmp_path / "ferplus.csv", rows=98)  # random votes: no temperature fits them
    out = tmp_path / "calibration.json"
    result = run_cli("-m", "fer.evaluate", "--calibrate", "--model", str(model), "--csv", str(tiny_csv),
                     "--ferplus", str(votes), "--write", "--json", str(out), "--cache", str(tmp_path / "cache"))
    report = json.loads(out.read_text())
    temperature = report["calibration"]["temperature"]
    assert f"temperature {temperature:.4f}" in result.stdout and report["calibration"]["labels"] == "fer2013"
    assert set(report["calibration"]["alternatives"]) == {"fer2013", "ferplus", "ferplus-votes"}
    plain = report["cells"]["plain"]["fer2013"]
    assert plain["n"] == 21 and plain["labels_changed"] == 0 and plain["before"]["accuracy"] == plain["after"]["accuracy"]
    low, high = plain["after"]["ece_interval_90"]
    assert 0 <= low <= high <= 1 and 0 <= plain["floor"]["ece"] <= plain["before"]["ece"] + 1e-9  # T = 1 is on the grid
    assert out.with_suffix(".reliability.png").stat().st_size > 0 and "ECE T = 1 → T" in out.with_suffix(".md").read_text()
    assert OnnxFacePredictor.load(model).temperature == pytest.approx(temperature)
    refused = run_cli("-m", "fer.evaluate", "--calibrate", "--model", str(tmp_path / "m.pkl"), "--csv", str(tiny_csv),
                      "--ferplus", str(votes), check=False)
    assert refused.returncode == 2 and "needs an ONNX model" in refused.stderr
