"""data_scripts/detector_crops.py on a tiny FER-style folder made from a real face (the astronaut): crops
where they belong, as serving cuts them, a complete training folder, counts that add up, the same bytes
however many workers, and clear one-line refusals."""

from __future__ import annotations

import importlib.util
import json
import os

import cv2
import numpy as np
import pytest
from conftest import ROOT, TINY_ARCH, run_cli

SCRIPT = "data_scripts/detector_crops.py"
#: row → (split, class); rows are file names, as prepare_fer2013.py writes them
ROWS = {0: ("train", "angry"), 1: ("train", "angry"), 2: ("train", "happy"), 3: ("train", "happy"),
        4: ("train", "happy"), 5: ("valid", "angry"), 6: ("valid", "happy"), 7: ("test", "happy"),
        8: ("train", "neutral")}
TRAIN = [r for r, (split, _) in ROWS.items() if split == "train"]
#: a flat grey image: no face for the detector to find
BLANK = 8
#: faces pasted at 80-200 px, where YuNet finds the astronaut's face
OPTIONS = ["--face-widths", "80", "200", "--tilted-fraction", "0.5", "--seed", "3"]
SOURCE_JSON = {"csv": "tiny.csv", "sha256": "0" * 64, "labels": "fer2013"}


def fer_faces(astronaut: np.ndarray) -> list[np.ndarray]:
    """FER-2013-like 48×48 grey faces: the astronaut's face, brows to chin, in a few variations."""
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    face = cv2.resize(grey[62:182, 165:285], (48, 48), interpolation=cv2.INTER_AREA)
    brighter = np.clip(face.astype(int) + 25, 0, 255).astype(np.uint8)
    darker = np.clip(face.astype(int) * 0.8, 0, 255).astype(np.uint8)
    shifted = cv2.resize(grey[58:184, 160:286], (48, 48), interpolation=cv2.INTER_AREA)
    return [face, face[:, ::-1].copy(), brighter, darker, shifted, face, brighter, darker, np.full_like(face, 128)]


def files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def settings(report: dict) -> dict:
    """The report without what may differ between equal builds."""
    return {k: v for k, v in report.items() if k not in ("seconds", "workers")}


@pytest.fixture(scope="module")
def source(tmp_path_factory, astronaut):
    root = tmp_path_factory.mktemp("fer") / "fer2013"
    for (row, (split, name)), face in zip(ROWS.items(), fer_faces(astronaut)):
        (root / split / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / name / f"{row}.png"), face)
    (root / "source.json").write_text(json.dumps(SOURCE_JSON))
    return root


@pytest.fixture(scope="module")
def built(source, tmp_path_factory):
    """The same folder built with 1 and with 2 worker processes."""
    work = tmp_path_factory.mktemp("det")
    outs = {}
    for workers in (1, 2):
        outs[workers] = work / f"det{workers}"
        run_cli(SCRIPT, "--data", str(source), "--out", str(outs[workers]), "--workers", str(workers), *OPTIONS)
    return outs


def test_crops_are_grey_48px_beside_their_originals(source, built):
    out = built[1]
    report = json.loads((out / "detector_crops.json").read_text())
    crops = sorted(out.rglob("*_det.png"))
    assert len(crops) == report["splits"]["train"]["total"]["crops"] >= len(TRAIN) - 2  # YuNet finds (nearly) all
    for crop in crops:
        row = int(crop.stem.removesuffix("_det"))
        assert row != BLANK
        assert ROWS[row] == (crop.parent.parent.name, crop.parent.name) == ("train", crop.parent.name)
        image = cv2.imread(str(crop), cv2.IMREAD_UNCHANGED)
        assert image.shape == (48, 48) and image.dtype == np.uint8
        assert (crop.parent / f"{row}.png").is_file()
    assert not list(out.rglob("*.tmp")) and not list(out.parent.glob(".*partial"))


def test_a_complete_training_folder(source, built):
    out = built[1]
    for row, (split, name) in ROWS.items():
        original = out / split / name / f"{row}.png"
        assert original.read_bytes() == (source / split / name / f"{row}.png").read_bytes()
        assert os.path.samefile(original, source / split / name / f"{row}.png")  # a hard link, not a copy
    assert not list((out / "valid").rglob("*_det.png")) and not list((out / "test").rglob("*_det.png"))
    assert files(out / "valid") == files(source / "valid") and files(out / "test") == files(source / "test")
    assert json.loads((out / "source.json").read_text()) == SOURCE_JSON


def test_counts_add_up(built):
    report = json.loads((built[1] / "detector_crops.json").read_text())
    train = report["splits"]["train"]
    assert list(report["splits"]) == ["train"]
    assert {n: c["originals"] for n, c in train["classes"].items()} == {"angry": 2, "happy": 3, "neutral": 1}
    assert train["classes"]["neutral"] == {"originals": 1, "crops": 0, "missed": 1}  # the blank: counted, skipped
    assert not list((built[1] / "train" / "neutral").glob("*_det.png"))
    for name, c in train["classes"].items():
        assert c["originals"] == c["crops"] + c["missed"]
        assert c["crops"] == len(list((built[1] / "train" / name).glob("*_det.png")))
    total = train["total"]
    assert total == {k: sum(c[k] for c in train["classes"].values()) for k in ("originals", "crops", "missed")}
    poses = train["poses"]
    assert poses["upright_scenes"] + poses["tilted_scenes"] == total["originals"] == len(TRAIN)
    assert poses["upright_missed"] + poses["tilted_missed"] == total["missed"]
    assert report["plain_splits"] == {"valid": 2, "test": 1}
    assert report["crop_spec"] == {"margin": 0.0, "square": True, "align": False}
    assert report["detector"]["name"] == "yunet" and report["detector"]["detect_width"] == 640
    assert report["seed"] == 3 and report["scene"]["face_widths"] == [80.0, 200.0]


def test_same_seed_same_bytes_with_one_or_two_workers(built):
    one, two = files(built[1]), files(built[2])
    report = "detector_crops.json"
    assert {k: v for k, v in one.items() if k != report} == {k: v for k, v in two.items() if k != report}
    assert settings(json.loads(one[report])) == settings(json.loads(two[report]))
    assert json.loads(two[report])["workers"] == 2


def test_the_crop_is_the_one_serving_cuts(source, built):
    """Rebuild one image's scene and cut its face with the app's FaceRecognizer and the predictor's
    preprocessing: the very same pixels as the file written."""
    from fer.evaluation.scenes import match, random_scene, scene_backgrounds
    from fer.serving.faces import faces_array
    from fer.serving.recognize import FaceRecognizer

    spec = importlib.util.spec_from_file_location("detector_crops", ROOT / SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    recognizer = FaceRecognizer(predictor=None)  # the app's photo detector and crop
    backgrounds = scene_backgrounds()
    checked = 0
    for row in TRAIN:
        split, name = ROWS[row]
        pixels = cv2.imread(str(source / split / name / f"{row}.png"), cv2.IMREAD_GRAYSCALE)
        rng = np.random.default_rng([3, row])
        tilted = bool(rng.random() < 0.5)
        scene, truth = random_scene(pixels, rng, backgrounds, tilted, (80.0, 200.0))
        matched, _ = match(recognizer.detector.detect(scene), [truth])
        written = built[1] / split / name / f"{row}_det.png"
        assert written.exists() == (0 in matched)
        if 0 in matched:
            served = faces_array(recognizer.crops(scene, [matched[0]]))[0, 0]
            assert np.array_equal(cv2.imread(str(written), cv2.IMREAD_UNCHANGED), served)
            face, _ = script.detector_crop(pixels, np.random.default_rng([3, row]), recognizer.detector, backgrounds,
                                           0.5, (80.0, 200.0))
            assert np.array_equal(face, served)
            checked += 1
    assert checked >= len(TRAIN) - 2


def test_refuses_to_overwrite_and_replaces_with_overwrite(source, built, tmp_path):
    out, source_files = tmp_path / "det", files(source)
    run_cli(SCRIPT, "--data", str(source), "--out", str(out), "--workers", "1", "--limit", "1", *OPTIONS)
    before = files(out)
    result = run_cli(SCRIPT, "--data", str(source), "--out", str(out), "--workers", "1", *OPTIONS, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: --out {out}: already exists; pass --overwrite to replace it"]
    assert files(out) == before
    run_cli(SCRIPT, "--data", str(source), "--out", str(out), "--workers", "1", "--overwrite", *OPTIONS)
    assert files(out) == files(built[1]) | {"detector_crops.json": files(out)["detector_crops.json"]}
    assert files(source) == source_files  # replacing the old folder left the files it linked to alone


@pytest.mark.parametrize("angle", [0.0, 17.0])
def test_paste_blends_only_where_the_face_lands(astronaut, angle):
    """fer.evaluation.scenes.paste blends only the face's bounding box: the same bytes as blending the whole
    canvas (the benchmarks' scenes stay what they were)."""
    from fer.evaluation.scenes import background, feathered_mask, fer_face, paste

    face = fer_faces(astronaut)[0]
    canvas, whole = background("coffee", 640, 480), background("coffee", 640, 480).astype(np.float32)
    truth = paste(canvas, fer_face(face), 150.0, (200.5, 300.25), angle, context=0.0, edge=0.02)
    matrix = cv2.getRotationMatrix2D((24.0, 24.0), angle, 150.0 / 48)
    matrix[:, 2] += (200.5 - 24.0, 300.25 - 24.0)
    warped = cv2.warpAffine(cv2.cvtColor(face, cv2.COLOR_GRAY2RGB).astype(np.float32), matrix, (640, 480),
                            flags=cv2.INTER_CUBIC)
    weight = cv2.warpAffine(feathered_mask(48, 48, 0.02), matrix, (640, 480), flags=cv2.INTER_LINEAR)[..., None]
    assert np.array_equal(canvas, np.clip(weight * warped + (1 - weight) * whole, 0, 255).astype(np.uint8))
    assert (truth.w, truth.h) == (150, 150)


@pytest.mark.parametrize("case", ["no data", "no split", "out inside data"])
def test_one_line_errors(source, tmp_path, case):
    args = {"no data": ["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
            "no split": ["--data", str(source), "--out", str(tmp_path / "o"), "--splits", "train", "test", "valid"],
            "out inside data": ["--data", str(source), "--out", str(source / "det")]}[case]
    if case == "no split":
        args[1] = str(tmp_path / "only_train")
        (tmp_path / "only_train" / "train" / "happy").mkdir(parents=True)
    result = run_cli(SCRIPT, *args, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "o").exists() and not (source / "det").exists()


def test_fer_finetune_trains_on_the_folder(built, tmp_path):
    """OUT is what `python -m fer.finetune --data` takes (1 epoch of a tiny model; originals and crops)."""
    out = tmp_path / "tiny.pkl"
    run_cli("-m", "fer.finetune", "--data", str(built[1]), "--arch", TINY_ARCH, "--no-pretrained", "--size", "48",
            "--epochs", "1", "--freeze-epochs", "0", "--bs", "4", "--lr", "1e-3", "--out", str(out),
            "--run-dir", str(tmp_path / "run"))
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["data"] == SOURCE_JSON and card["classes"]
