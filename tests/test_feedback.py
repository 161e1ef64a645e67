"""Corrections (fer.serving.feedback) and the personal model made from them (python -m fer.personalize), on the tiny
synthetic set: the folder layout and manifest, deleting everything, a personal model end to end, and a
one-line message for each kind of bad feedback folder."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_cli, synthetic_face

from fer.core.labels import FER2013_CLASSES
from fer.serving import feedback

CLASSES = list(FER2013_CLASSES)


def probs_for(label: str) -> dict[str, float]:
    return {c: (0.7 if c == label else 0.05) for c in CLASSES}


def test_a_correction_is_the_48px_grey_face_in_its_class_folder_with_a_manifest_row(tmp_path, astronaut):
    folder = tmp_path / "fb"
    crop = astronaut[60:182, 174:276]  # an RGB crop of any size: saved as the classifier's 48×48 grey input
    path = feedback.save_correction(folder, crop, "happy", "upload", "model.onnx", "sad", probs_for("sad"), CLASSES)
    assert path.parent == folder / "happy" and path.suffix == ".png"
    saved = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (48, 48) and saved.dtype == np.uint8
    second = feedback.save_correction(folder, synthetic_face(4, 0), "neutral", "webcam", "model.onnx", "sad",
                                      probs_for("sad"), CLASSES)
    assert second != path
    rows = feedback.read_manifest(folder)
    assert [r["file"] for r in rows] == ["happy/" + path.name, "neutral/" + second.name]
    assert rows[0]["source"] == "upload" and rows[1]["source"] == "webcam"
    assert rows[0]["model"] == "model.onnx" and rows[0]["predicted"] == "sad" and rows[0]["label"] == "happy"
    assert float(rows[0]["p_sad"]) == 0.7 and rows[0]["time"].endswith("Z")
    with open(folder / feedback.MANIFEST) as f:
        assert next(csv.reader(f))[:6] == ["time", "file", "label", "source", "model", "predicted"]
    assert feedback.count_corrections(folder) == {"happy": 1, "neutral": 1}
    assert "**2** (happy 1, neutral 1)" in feedback.summary(folder)


def test_an_unknown_label_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(feedback.FeedbackError, match="'bored' is not one of the model's classes"):
        feedback.save_correction(tmp_path, synthetic_face(0, 0), "bored", "upload", "m", "sad", {}, CLASSES)
    assert list(tmp_path.iterdir()) == []


def live_payload(**change) -> dict:
    """A correction as the page's live view sends it (app/static/live/correct.js)."""
    import base64

    face = synthetic_face(5, 1)
    payload = {"face": base64.b64encode(face.tobytes()).decode(), "label": "surprise", "predicted": "fear",
               "probs": [0.05, 0.05, 0.6, 0.1, 0.1, 0.05, 0.05], "model": "fer2013_effnet_lite0.onnx"}
    return {**payload, **change}


def test_a_live_view_correction_is_parsed_and_saved_as_the_48px_face(tmp_path):
    correction = feedback.parse_correction(live_payload(), CLASSES)
    assert correction.face.shape == (48, 48) and np.array_equal(correction.face, synthetic_face(5, 1))
    assert correction.probs["fear"] == 0.6 and correction.predicted == "fear" and correction.label == "surprise"
    path = feedback.save_correction(tmp_path, correction.face, correction.label, "live", correction.model,
                                    correction.predicted, correction.probs, CLASSES)
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), correction.face)  # PNG: lossless
    (row,) = feedback.read_manifest(tmp_path)
    assert row["source"] == "live" and row["model"] == "fer2013_effnet_lite0.onnx" and row["p_fear"] == "0.6000"


@pytest.mark.parametrize("change, message", [
    ({"face": "not base64!"}, "face: not base64"),
    ({"face": "AAAA"}, "face: 3 bytes, expected 2304"),
    ({"label": "bored"}, "label 'bored' is not one of"),
    ({"probs": [0.5, 0.5]}, "one probability per class"),
    ({"probs": [2, 0, 0, 0, 0, 0, 0]}, "between 0 and 1"),
    ({"predicted": "bored"}, "predicted 'bored'"),
    ({"model": "a\nb"}, "model:"),
    ({"model": '=HYPERLINK("http://evil.example","click")'}, "model:"),  # a formula in a spreadsheet
    ({"probs": ["0.1"] * 7}, "each must be a number"),
    ({"probs": [True] + [False] * 6}, "each must be a number"),
    ({"probs": [1e400] * 7}, "between 0 and 1"),  # JSON's 1e400 is an infinite float
    ({"probs": [10 ** 400] * 7}, "between 0 and 1"),  # an integer too large for a float: no OverflowError
])
def test_a_bad_live_view_correction_names_its_problem(change, message):
    with pytest.raises(feedback.FeedbackError, match=message):
        feedback.parse_correction(live_payload(**change), CLASSES)
    with pytest.raises(feedback.FeedbackError, match="JSON object"):
        feedback.parse_correction([1, 2], CLASSES)


def test_delete_all_removes_the_corrections_and_keeps_personal_models(tmp_path):
    for i, label in enumerate(["angry", "angry", "fear"]):
        feedback.save_correction(tmp_path, synthetic_face(i, i), label, "upload", "m", "sad", probs_for("sad"), CLASSES)
    (tmp_path / "mine.onnx").write_bytes(b"model")
    (tmp_path / "mine.json").write_text("{}")
    assert feedback.delete_all(tmp_path) == 3
    assert feedback.count_corrections(tmp_path) == {} and not (tmp_path / feedback.MANIFEST).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["mine.json", "mine.onnx"]
    assert feedback.personal_models(tmp_path) == [tmp_path / "mine.onnx"]
    assert "none yet" in feedback.summary(tmp_path)


def test_cells_that_would_be_formulas_are_stored_as_text(tmp_path):
    """Corrections saved by a program (not parsed from the page) may carry any model name: the manifest keeps it
    as text a spreadsheet will not run."""
    feedback.save_correction(tmp_path, synthetic_face(0, 0), "sad", "upload", "=1+cmd|' /C calc'!A0", "@SUM(1)",
                             probs_for("sad"), CLASSES)
    (row,) = feedback.read_manifest(tmp_path)
    assert row["model"] == "'=1+cmd|' /C calc'!A0" and row["predicted"] == "'@SUM(1)" and row["p_sad"] == "0.7000"


def test_the_page_is_told_the_folders_name_not_its_path(tmp_path):
    folder = tmp_path / "my corrections"
    assert feedback.summary(folder) == "Corrections are saved in `my corrections`: none yet."
    assert str(tmp_path) not in feedback.summary(folder)


def test_a_folder_holds_at_most_max_corrections(tmp_path):
    for i in range(3):
        feedback.save_correction(tmp_path, synthetic_face(i, i), "sad", "upload", "m", "sad", probs_for("sad"),
                                 CLASSES, max_corrections=3)
    with pytest.raises(feedback.FeedbackError, match="holds 3 corrections, the most this app keeps"):
        feedback.save_correction(tmp_path, synthetic_face(4, 4), "sad", "upload", "m", "sad", probs_for("sad"),
                                 CLASSES, max_corrections=3)
    assert len(feedback.read_manifest(tmp_path)) == 3


def test_deletions_and_switches_are_recorded_with_who_and_when(tmp_path):
    line = feedback.record_action(tmp_path, "alice", "deleted all 3 corrections")
    feedback.record_action(tmp_path, "10.0.0.7 (no sign-in)", "switched the model to mine.onnx\n=evil")
    lines = (tmp_path / feedback.ACTIONS_LOG).read_text().splitlines()
    assert lines[0] == line and len(lines) == 2
    when, who, what = lines[1].split("\t")
    assert when.endswith("Z") and who == "10.0.0.7 (no sign-in)" and what == "switched the model to mine.onnx?=evil"
    feedback.delete_all(tmp_path)
    assert (tmp_path / feedback.ACTIONS_LOG).exists()  # the record stays when the corrections go


SAVER = """
import sys, numpy as np
from fer.core.labels import FER2013_CLASSES
from fer.serving import feedback
folder, n = sys.argv[1], int(sys.argv[2])
classes = list(FER2013_CLASSES)
for i in range(n):
    feedback.save_correction(folder, np.full((48, 48), i % 256, np.uint8), classes[i % 7], "live", "m.onnx", "sad",
                             {c: 1 / 7 for c in classes}, classes)
    feedback.summary(folder)
"""


def test_two_apps_sharing_one_folder_never_leave_a_face_without_its_row(tmp_path):
    """Issue 32: two apps on one --feedback folder, "delete all" in one during saves in the other, left PNGs with
    no manifest row, and a summary after a save hit FileNotFoundError. Here two processes save while this one
    deletes everything again and again: every image left has its row, every row its image."""
    import subprocess
    import sys

    from conftest import ROOT

    folder = tmp_path / "shared"
    savers = [subprocess.Popen([sys.executable, "-c", SAVER, str(folder), "150"], cwd=ROOT, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    deleted = 0
    while any(s.poll() is None for s in savers):
        deleted += feedback.delete_all(folder)
        feedback.summary(folder)
    errors = [s.stderr.read() for s in savers]
    assert all(s.returncode == 0 for s in savers), errors
    files = {f"{label}/{f.name}" for label, paths in feedback.correction_files(folder).items() for f in paths}
    rows = [r["file"] for r in feedback.read_manifest(folder)]
    assert sorted(rows) == sorted(files) and len(rows) == len(set(rows))
    assert deleted + len(files) == 300  # every save counted once: deleted with its row, or still there with it


def test_a_feedback_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(feedback.FeedbackError, match="exists and is not a folder"):
        feedback.check_folder(tmp_path / "f")
    assert feedback.check_folder(tmp_path / "new" / "fb").is_dir()


def corrections_folder(root: Path, tiny_data: Path, classes=("happy", "sad", "neutral"), per_class: int = 4) -> Path:
    """Corrections of some classes only, saved as the app saves them (train faces relabelled as the folder says)."""
    folder = root / "fb"
    for label in classes:
        for f in sorted((tiny_data / "train" / label).glob("*.png"))[:per_class]:
            face = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            feedback.save_correction(folder, face, label, "upload", "tiny.pkl", "angry", probs_for("angry"), CLASSES)
    return folder


@pytest.mark.slow
def test_personalize_end_to_end_writes_an_onnx_model_and_card_and_leaves_the_base_alone(
        tiny_model, tiny_data, tiny_csv, tmp_path):
    from fer.serving.onnx_predict import OnnxFacePredictor

    folder = corrections_folder(tmp_path, tiny_data)
    base_files = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tiny_model.parent.glob("tiny.*")}
    result = run_cli("-m", "fer.personalize", "--feedback", str(folder), "--out", str(folder / "mine"),
                     "--base", str(tiny_model), "--data", str(tiny_data), "--replay", "40", "--eval", str(tiny_csv),
                     "--steps", "30", "--views", "2")
    out = folder / "mine.onnx"
    assert f"wrote {out}" in result.stdout and "PublicTest, fer2013 labels (21 faces)" in result.stdout
    assert "12 corrections (" in result.stdout  # the library's log lines reach the command's output
    assert "training" in result.stderr  # the progress bar
    card = json.loads(out.with_suffix(".json").read_text())
    info = card["personalized"]
    assert info["base"] == "tiny.pkl" and info["corrections"] == {"happy": 4, "sad": 4, "neutral": 4}
    assert info["manifest_rows"] == 12 and info["replay"]["faces"] == 40 and info["seconds"] > 0
    assert set(card["evaluation"]["fer2013"]) == {"before", "after", "faces"}
    assert 0 <= card["evaluation"]["fer2013"]["after"]["accuracy"] <= 1
    assert card["onnx"]["max_difference_from_learn_predict"] <= 1e-4
    predictor = OnnxFacePredictor.load(out)
    assert predictor.classes == CLASSES and predictor.card["personalized"]["base"] == "tiny.pkl"
    probs = predictor.predict_proba([synthetic_face(3, 1)])
    assert probs.shape == (1, 7) and abs(probs.sum() - 1) < 1e-5
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in base_files} == base_files  # base untouched


def run_personalize(*args: str, capsys) -> tuple[int, str]:
    from fer.personalize import main

    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("case, message", [
    ("missing", "no such folder"),
    ("empty", "no corrections (expected"),
    ("unknown class", "bored/ is not a class of the base model"),
    ("unreadable", "none of the 2 images is usable (e.g. happy/broken.png: not an image file"),
    ("no face", "none of the 1 images is usable (e.g. happy/coffee.png: no face found in this photo)"),
    ("non-UTF-8 manifest", "manifest.csv: not a UTF-8 CSV manifest"),
])
def test_bad_feedback_folders_get_one_line(tiny_model, tmp_path, capsys, case, message):
    from skimage import data

    folder = tmp_path / "fb"
    if case != "missing":
        folder.mkdir()
    if case == "unknown class":
        (folder / "bored").mkdir()
        cv2.imwrite(str(folder / "bored" / "a.png"), synthetic_face(0, 0))
    if case == "unreadable":
        (folder / "happy").mkdir()
        (folder / "happy" / "broken.png").write_bytes(b"not a png")
        (folder / "happy" / "empty.png").write_bytes(b"")
    if case == "non-UTF-8 manifest":  # named before any training, not after 300 steps
        (folder / "happy").mkdir()
        cv2.imwrite(str(folder / "happy" / "a.png"), synthetic_face(3, 0))
        (folder / feedback.MANIFEST).write_bytes("time,file,label\n2024,happy/a.png,happy é\n".encode("latin-1"))
    if case == "no face":
        (folder / "happy").mkdir()
        cv2.imwrite(str(folder / "happy" / "coffee.png"), data.coffee()[..., ::-1])
    code, err = run_personalize("--feedback", str(folder), "--out", str(tmp_path / "mine"), "--base", str(tiny_model),
                                capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "mine.onnx").exists()


def test_the_personal_model_never_overwrites_the_base(tiny_model, tiny_data, tmp_path, capsys):
    base = tmp_path / "base"
    base.mkdir()
    copy = Path(shutil.copy(tiny_model, base / "tiny.pkl"))
    shutil.copy(tiny_model.with_suffix(".json"), base / "tiny.json")
    before = copy.read_bytes()
    folder = corrections_folder(tmp_path, tiny_data, ("happy",), 1)
    code, err = run_personalize("--feedback", str(folder), "--out", str(base / "tiny"), "--base", str(copy),
                                capsys=capsys)
    assert code == 2 and "would overwrite the base model" in err
    assert copy.read_bytes() == before and not (base / "tiny.onnx").exists()


def test_the_live_views_largest_face_is_kept_for_a_correction(tiny_model, astronaut, tmp_path):
    from fer.serving.recognize import FaceRecognizer, VideoSession, annotate_frame

    recognizer = FaceRecognizer.load(tiny_model.with_suffix(".onnx"))
    session = VideoSession()
    small = np.ascontiguousarray(astronaut[:, ::-1][::2, ::2])  # a second, smaller face beside the big one
    frame = np.zeros((512, 768, 3), np.uint8)
    frame[:, :512], frame[:256, 512:] = astronaut, small
    annotated, shown = annotate_frame(recognizer, frame, session)
    crop, probs = session.largest
    assert probs == shown and crop.ndim == 2 and crop.shape[0] > 80  # the astronaut's face, not the small copy
    path = feedback.save_correction(tmp_path, crop, "happy", "webcam", "tiny.onnx", max(probs, key=probs.get),
                                    probs, recognizer.classes)
    assert feedback.read_manifest(tmp_path)[0]["source"] == "webcam" and path.exists()
