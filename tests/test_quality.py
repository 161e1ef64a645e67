"""Face quality (fer/serving/quality.py) and the opt-in "not sure" rule: measured on every face, carried by
FaceResult, the CSV and JSON, and drawn as "?"."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import run_cli

import fer
from fer.serving.detect import Box
from fer.serving.draw import draw_face
from fer.serving.quality import (
    BANDS,
    POOR,
    SIZE_LIMITS,
    UncertaintyRule,
    face_quality,
    sharpness,
    yaw_angle,
)
from fer.serving.recognize import FaceRecognizer, draw_tracks
from fer.serving.table import QUALITY_COLUMNS, face_columns, face_row
from fer.serving.tracking import Track

FRONTAL = ((40.0, 50.0), (60.0, 50.0), (50.0, 60.0), (42.0, 70.0), (58.0, 70.0))


def textured_face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def test_sharpness_falls_with_blur_and_is_zero_on_a_flat_face():
    face = textured_face()
    assert sharpness(np.full((48, 48), 90, np.uint8)) == 0.0
    assert sharpness(cv2.GaussianBlur(face, (0, 0), 2)) < sharpness(cv2.GaussianBlur(face, (0, 0), 1)) < sharpness(face)


def test_a_large_frontal_sharp_face_is_good_and_a_tiny_one_poor():
    good = face_quality(Box(30, 30, 80, 80, FRONTAL, 0.95), textured_face())
    assert (good.value, good.band, good.limit) == (1.0, BANDS[0][0], None)
    assert good.roll == pytest.approx(0.0) and good.yaw == pytest.approx(0.0)
    tiny = face_quality(Box(30, 30, int(SIZE_LIMITS[0]), int(SIZE_LIMITS[0]), FRONTAL, 0.95), textured_face())
    assert (tiny.value, tiny.band, tiny.limit) == (0.0, POOR, "size")


def test_roll_and_yaw_come_from_the_landmarks():
    tilted = ((40.0, 50.0), (60.0, 70.0), (48.0, 62.0), (35.0, 75.0), (50.0, 85.0))  # eyes at 45°
    assert face_quality(Box(0, 0, 90, 90, tilted, 0.9), textured_face()).roll == pytest.approx(45.0)
    turned = (*FRONTAL[:2], (60.0, 60.0), *FRONTAL[3:])  # the nose at the left eye: about 45° to the image's right
    assert yaw_angle(Box(0, 0, 90, 90, turned)) == pytest.approx(45.0)
    assert yaw_angle(Box(0, 0, 90, 90, (*FRONTAL[:2], (40.0, 60.0), *FRONTAL[3:]))) == pytest.approx(-45.0)


def test_measures_the_detector_does_not_give_are_left_out():
    haar = face_quality(Box(0, 0, 90, 90), textured_face())
    assert (haar.score, haar.roll, haar.yaw) == (None, None, None) and haar.value == 1.0
    flat = face_quality(Box(0, 0, 90, 90), np.full((48, 48), 90, np.uint8))
    assert (flat.band, flat.limit) == (POOR, "sharpness")


def test_the_rule_is_off_by_default_and_checks_its_thresholds():
    poor = face_quality(Box(0, 0, 10, 10), textured_face())
    assert not UncertaintyRule().is_uncertain(0.01, poor)
    rule = UncertaintyRule(min_confidence=0.5, min_quality=0.35)
    assert rule.is_uncertain(0.4, None) and rule.is_uncertain(0.9, poor) and not rule.is_uncertain(0.9, None)
    with pytest.raises(ValueError, match="min_quality=1.5: must be between 0 and 1"):
        UncertaintyRule(min_quality=1.5)


def test_every_face_carries_its_quality_and_a_not_sure_face_no_label(astronaut):
    sure = fer.load().analyze(astronaut)
    unsure = fer.load(min_confidence=1.0).analyze(astronaut)
    assert len(sure) == len(unsure) == 1
    face = unsure[0]
    assert face.uncertain and face.label is None and face.predicted == sure[0].label and face.probs == sure[0].probs
    assert face.quality == sure[0].quality and face.quality.band in {b for b, _ in BANDS}
    described = face.as_dict()
    assert described["label"] is None and described["predicted"] == face.predicted
    assert set(described["quality"]) == {"quality", "band", "limit", "size", "score", "roll", "yaw", "sharpness"}
    row = face_row(face)
    assert row["label"] == "" and row["quality_band"] == face.quality.band and list(row) == face_columns(list(face.probs))
    assert face_row(sure[0])["label"] == sure[0].label


def test_a_not_sure_face_is_drawn_as_a_question_mark(astronaut):
    recognizer = FaceRecognizer.load(min_confidence=1.0)
    annotated, (face,) = recognizer.annotate(astronaut)
    expected = astronaut.copy()
    draw_face(expected, face.box, None, face.confidence)
    assert np.array_equal(annotated, expected)
    labelled = astronaut.copy()
    draw_face(labelled, face.box, face.predicted, face.confidence)
    assert not np.array_equal(annotated, labelled)
    track = Track(0, face.box, np.array(list(face.probs.values())), quality=face.quality)
    video = astronaut.copy()
    draw_tracks(video, [track], recognizer.classes, ids=True, rule=recognizer.rule)
    with_id = astronaut.copy()
    draw_face(with_id, face.box, None, face.confidence, 1)
    assert np.array_equal(video, with_id)


def test_analyze_command_writes_quality_and_takes_the_rule(astronaut, tmp_path):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    csv, out = tmp_path / "faces.csv", tmp_path / "faces.json"
    run_cli("-m", "fer.analyze", str(photo), "--csv", str(csv), "--json", str(out), "--min-confidence", "1")
    import pandas as pd

    table = pd.read_csv(csv, keep_default_na=False)
    assert all(c in table.columns for c in QUALITY_COLUMNS) and table["label"].tolist() == [""]
    (face,) = json.loads(out.read_text())["files"][0]["faces"]
    assert face["label"] is None and face["quality"]["band"] == table["quality_band"][0]
    refused = run_cli("-m", "fer.analyze", str(photo), "--min-quality", "2", check=False)
    assert refused.returncode == 2 and "--min-quality 2.0: must be between 0 and 1" in refused.stderr


def test_the_apps_not_sure_default_is_the_one_chosen_on_the_measured_curve():
    from conftest import ROOT

    from fer_app.settings import NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY

    chosen = json.loads((ROOT / "docs/results/not_sure.json").read_text())["chosen"]
    assert (NOT_SURE_MIN_CONFIDENCE, NOT_SURE_MIN_QUALITY) == (chosen["min_confidence"], chosen["min_quality"])
    from fer.serving.quality import BANDS

    assert chosen["min_quality"] in (0.0, BANDS[-1][1])  # the poor band's edge, or off
