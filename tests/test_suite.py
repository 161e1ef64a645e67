"""The evaluation suite (fer/suite.py, `python -m fer.evaluate --suite`) on the tiny synthetic set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from fer.evaluation.suite import LABEL_SETS, SETS, cell_metrics, expected_calibration_error, serving_score


def test_expected_calibration_error_is_the_confidence_accuracy_gap():
    probs = np.array([[0.9, 0.1]] * 10)  # 90% confident throughout
    assert expected_calibration_error(probs, np.array([True] * 9 + [False])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([True] * 5 + [False] * 5)) == pytest.approx(0.4)


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present():
    classes = ["a", "b", "c"]
    probs = np.eye(3)[[0, 0, 0, 1, 0, 2]]  # predicted: a a a b a c
    cell = cell_metrics(probs, ["a", "a", "a", "b", "b", None], classes)  # the unlabelled face is left out
    assert cell["n"] == 5 and cell["accuracy"] == pytest.approx(4 / 5)
    assert cell["recall"] == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert cell["balanced_accuracy"] == pytest.approx(0.75)  # c has no face: not in the mean
    assert cell_metrics(probs[:0], [], classes)["balanced_accuracy"] == 0.0


def test_serving_score_is_the_mean_of_six_cells():
    cells = {s: {labels: {"balanced_accuracy": 0.1 * (i + 1)} for labels in LABEL_SETS} for i, s in enumerate(SETS)}
    assert serving_score(cells) == pytest.approx(0.2)


@pytest.mark.slow
def test_suite_command_writes_json_and_table_and_reuses_its_faces(tiny_model, tiny_csv, tmp_path):
    from test_training import write_ferplus_votes

    votes = write_ferplus_votes(tmp_path / "ferplus.csv", rows=98)
    onnx = tiny_model.with_suffix(".onnx")
    out = tmp_path / "suite.json"
    args = ("-m", "fer.evaluate", "--suite", "--usage", "PrivateTest", "--csv", str(tiny_csv), "--ferplus", str(votes),
            "--model", str(tiny_model), "--model", f"onnx={onnx}", "--json", str(out), "--cache", str(tmp_path / "cache"))
    first = run_cli(*args)
    results = json.loads(out.read_text())
    assert list(results) == [str(tiny_model), "onnx"] and results["onnx"]["model"] == str(onnx)
    for result in results.values():
        assert result["usage"] == "PrivateTest" and set(result["cells"]) == set(SETS)
        plain = result["cells"]["plain"]
        assert plain["fer2013"]["n"] == 21 and plain["detected"] == 1.0  # 3 faces of each of 7 classes
        assert 0 < plain["ferplus"]["n"] <= 21  # faces without a 7-class FER+ majority are left out
        assert 0 <= result["serving_score"] <= 1
    # the .pkl and its .onnx export are the same model: the same figures in every cell
    a, b = results.values()
    assert a["serving_score"] == pytest.approx(b["serving_score"], abs=1e-6)
    table = out.with_suffix(".md").read_text()
    assert "serving score" in table and "crops tilted, ferplus labels" in table and "recall of disgust" in table
    assert list((tmp_path / "cache").glob("suite-PrivateTest-seed0-all-*.npz"))
    again = run_cli(*args)  # the faces come from the cache: the same figures
    assert json.loads(out.read_text())["onnx"]["cells"] == b["cells"]
    assert "faces built in" in first.stdout and "faces built in" in again.stdout


def test_suite_command_names_a_missing_file(tmp_path):
    result = run_cli("-m", "fer.evaluate", "--suite", "--csv", str(tmp_path / "none.csv"), check=False)
    assert result.returncode == 2 and "none.csv: no such file (--csv: the FER-2013 CSV)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_models_suite_figures_are_found_beside_it_for_its_pkl_and_onnx(tmp_path):
    from fer.core.card import describe_suite, suite_figures, write_suite_figures

    cells = {s: {labels: {"accuracy": 0.7, "balanced_accuracy": 0.6} for labels in LABEL_SETS} for s in SETS}
    model = tmp_path / "m.onnx"
    written = write_suite_figures(model, {"usage": "PrivateTest", "serving_score": 0.6644, "cells": cells})
    assert written == tmp_path / "m.suite.json"
    for twin in (model.with_suffix(".pkl"), model):
        found = suite_figures(twin)
        assert found is not None and found["serving_score"] == 0.6644
    assert "serving score 66.4" in describe_suite(found) and "FER-2013 accuracy 70.0%" in describe_suite(found)
    assert suite_figures(tmp_path / "other.onnx") is None
