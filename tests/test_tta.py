"""Test-time augmentation: the views of each mode (fer.serving.faces), their averaged probabilities from the shipped
ONNX model, and ``python -m fer.evaluate --tta``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import run_cli, synthetic_face

from fer.core.labels import FER2013_CLASSES
from fer.serving.faces import TTA_MODES, faces_array, tta_mode, tta_views
from fer.serving.model_files import DEFAULT_ONNX


@pytest.fixture(scope="module")
def shipped():
    from fer.serving.onnx_predict import OnnxFacePredictor

    return OnnxFacePredictor.load(DEFAULT_ONNX)


def symmetric_face() -> np.ndarray:
    """A synthetic face made exactly left-right symmetric."""
    face = synthetic_face(3, seed=5)
    return np.concatenate([face[:, :24], face[:, :24][:, ::-1]], axis=1)


def test_modes_and_their_old_boolean_names():
    assert [tta_mode(m) for m in (None, False, True, *TTA_MODES)] == ["none", "none", "flip", *TTA_MODES]
    with pytest.raises(ValueError, match="TTA mode 'bogus': choose one of none, flip, tencrop"):
        tta_mode("bogus")


def test_ten_crops_come_from_the_corners_and_the_centre():
    marked = np.zeros((48, 48), np.uint8)
    marked[:2, :2], marked[:2, -2:], marked[-2:, :2], marked[-2:, -2:] = 50, 100, 150, 200  # each in one crop only
    face = synthetic_face(2, seed=4)
    views = tta_views(faces_array([marked, face]), "tencrop")
    assert len(views) == 10 and all(v.shape == (2, 1, 48, 48) and v.dtype == np.uint8 for v in views)
    assert all(v.flags.c_contiguous for v in views)
    corners = {50: (0, 0), 100: (0, -1), 150: (-1, 0), 200: (-1, -1)}  # top-left, top-right, bottom-left, bottom-right
    for view, (value, (y, x)) in zip(views, corners.items()):
        ys, xs = np.nonzero(view[0, 0])
        assert view[0, 0, y, x] == view[0, 0].max() == value, "a crop holds another crop's corner"
        assert (abs(ys - y % 48) < 4).all() and (abs(xs - x % 48) < 4).all()  # nothing but that corner
    assert views[4][0].max() == 0  # the centre crop holds no corner
    slices = [np.s_[:44, :44], np.s_[:44, 4:], np.s_[4:, :44], np.s_[4:, 4:], np.s_[2:46, 2:46]]
    for view, where in zip(views, slices):
        assert np.array_equal(view[1, 0], cv2.resize(face[where], (48, 48), interpolation=cv2.INTER_LINEAR))
    for crop, mirror in zip(views[:5], views[5:]):
        assert np.array_equal(mirror, crop[..., ::-1])


def test_flip_views_are_the_face_and_its_mirror():
    batch = faces_array([synthetic_face(0, seed=1)])
    none, flip = tta_views(batch, "none"), tta_views(batch, True)
    assert len(none) == 1 and np.array_equal(none[0], batch)
    assert len(flip) == 2 and np.array_equal(flip[1], batch[..., ::-1])


def test_tta_probabilities_of_the_shipped_model(shipped):
    faces = [synthetic_face(label, seed=label) for label in range(7)] + [symmetric_face()]
    probs = {mode: shipped.predict_proba(faces, tta=mode, bs=3) for mode in TTA_MODES}
    for p in probs.values():
        assert p.shape == (8, 7) and p.dtype == np.float32 and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(shipped.predict_proba(faces, tta=True, bs=3), probs["flip"])
    assert np.array_equal(shipped.predict_proba(faces, tta=False, bs=3), probs["none"])
    # tencrop is the mean of the plain probabilities of its ten views
    views = tta_views(faces_array(faces), "tencrop")
    by_view = [shipped.predict_proba(list(v[:, 0])) for v in views]
    assert np.allclose(probs["tencrop"], np.mean(by_view, axis=0), atol=1e-6)
    # a symmetric face is its own mirror image: flip TTA changes nothing
    assert np.allclose(probs["flip"][-1], probs["none"][-1], atol=1e-6)
    # the views of a mirrored face are the mirrored views, so both TTA modes give it the same probabilities
    mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in faces]
    assert np.allclose(shipped.predict_proba(mirrored, tta="flip"), probs["flip"], atol=1e-6)
    assert np.allclose(shipped.predict_proba(mirrored, tta="tencrop"), probs["tencrop"], atol=1e-3)
    assert not np.allclose(probs["tencrop"], probs["flip"], atol=1e-3)  # the crops are really seen
    with pytest.raises(ValueError, match="choose one of none, flip, tencrop"):
        shipped.predict_proba(faces, tta="bogus")


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tta") / "faces"
    for label, name in enumerate(FER2013_CLASSES):
        (folder / name).mkdir(parents=True)
        for seed in range(2):
            cv2.imwrite(str(folder / name / f"{seed}.png"), synthetic_face(label, seed))
    return folder


@pytest.mark.parametrize("tta, mode", [(["--tta", "tencrop"], "tencrop"), (["--tta"], "flip"), ([], "none")])
def test_evaluate_states_its_tta_mode(small_folder, tmp_path, tta, mode):
    out = tmp_path / "e.json"
    result = run_cli("-m", "fer.evaluate", "--model", str(DEFAULT_ONNX), "--data", str(small_folder), *tta,
                     "--json", str(out), timeout=300)
    figures = json.loads(out.read_text())
    assert figures["tta"] == mode and figures["n"] == 14 and f"14 images, TTA {mode}," in result.stdout
    assert out.with_suffix(".cm.png").stat().st_size > 0


def test_evaluate_refuses_an_unknown_tta_mode(small_folder):
    result = run_cli("-m", "fer.evaluate", "--data", str(small_folder), "--tta", "bogus", check=False, timeout=120)
    assert result.returncode == 2 and "invalid choice: 'bogus'" in result.stderr and "Traceback" not in result.stderr
