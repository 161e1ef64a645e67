"""Torch-free serving: the ONNX export (fer.finetune and python -m fer.export), OnnxFacePredictor, the one
loader, and the app with --model X.onnx importing neither torch nor fastai."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from fer.core.labels import FER2013_CLASSES
from fer.serving.model_files import ModelLoadError, load_predictor
from fer_app.testing import running_app


def crops(astronaut) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (48, 48), dtype=np.uint8), astronaut[30:230, 160:340],
            rng.integers(0, 256, (31, 77), dtype=np.uint8), np.full((48, 48), 200, np.uint8)]


def test_finetune_writes_onnx_beside_pkl_equal_to_learn_predict(tiny_model, predictor, astronaut):
    from fer.serving.faces import to_face
    from fer.serving.onnx_predict import OnnxFacePredictor

    onnx_path = tiny_model.with_suffix(".onnx")
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert card["onnx"]["file"] == onnx_path.name and card["onnx"]["max_difference_from_learn_predict"] <= 1e-4
    assert card["preprocessing"]["resize"]["size"] == [48, 48] and card["classes"] == list(FER2013_CLASSES)
    onnx = load_predictor(onnx_path)
    assert isinstance(onnx, OnnxFacePredictor) and onnx.classes == list(FER2013_CLASSES)
    assert onnx.card["arch"] == card["arch"] and onnx.describe() == predictor.describe()
    faces = crops(astronaut)
    with predictor.learn.no_bar():
        slow = np.stack([predictor.learn.predict(to_face(c))[2].numpy() for c in faces])
    fast = onnx.predict_proba(faces)
    assert fast.shape == (4, 7) and np.abs(fast - slow).max() < 1e-4
    mirrored = onnx.predict_proba([np.ascontiguousarray(to_face(c)[:, ::-1]) for c in faces])
    assert np.allclose(onnx.predict_proba(faces, tta=True), (fast + mirrored) / 2, atol=1e-6)
    assert np.allclose(onnx.predict_proba(faces, tta=True), predictor.predict_proba(faces, tta=True), atol=1e-4)
    tencrop = onnx.predict_proba(faces, tta="tencrop")
    assert np.allclose(tencrop, predictor.predict_proba(faces, tta="tencrop"), atol=1e-4)
    assert onnx.predict_proba([]).shape == (0, 7)


def test_export_cli_is_self_contained_and_keeps_the_card(tiny_model, tmp_path, astronaut):
    out = tmp_path / "copy.onnx"
    result = run_cli("-m", "fer.export", str(tiny_model), "--out", str(out))
    assert f"exported {out}" in result.stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["arch"] == json.loads(tiny_model.with_suffix(".json").read_text())["arch"]
    out.with_suffix(".json").unlink()  # the classes and card travel inside the ONNX file
    onnx = load_predictor(out)
    assert onnx.classes == list(FER2013_CLASSES) and onnx.card["input_size"] == 48
    shipped = load_predictor(tiny_model.with_suffix(".onnx"))
    assert np.allclose(onnx.predict_proba(crops(astronaut)), shipped.predict_proba(crops(astronaut)), atol=1e-6)


def test_export_cli_errors_name_the_file(tmp_path):
    missing = tmp_path / "none.pkl"
    result = run_cli("-m", "fer.export", str(missing), check=False, timeout=120)
    assert result.returncode == 2 and str(missing) in result.stderr and "Traceback" not in result.stderr
    result = run_cli("-m", "fer.export", str(missing), "--out", str(tmp_path / "x.txt"), check=False, timeout=120)
    assert result.returncode == 2 and "must end in .onnx" in result.stderr


@pytest.mark.parametrize("content, problem", [(None, "not found"), (b"not onnx" * 10, "not a usable fer ONNX model"),
                                              ("half", "not a usable fer ONNX model")])
def test_bad_onnx_files_are_refused_clearly(tmp_path, tiny_model, content, problem):
    path = tmp_path / "model.onnx"
    if content == "half":
        whole = tiny_model.with_suffix(".onnx").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=f"{path}.*{problem}"):
        load_predictor(path)


def test_unknown_model_suffix_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match=r"model\.pt: unknown kind '\.pt'"):
        load_predictor(tmp_path / "model.pt")


def test_app_with_onnx_model_imports_neither_torch_nor_fastai(tiny_model):
    code = (
        "import json, sys\n"
        "from fer_app import main\n"
        "from skimage import data\n"
        f"args = main.parse_args(['--model', r'{tiny_model.with_suffix('.onnx')}'])\n"
        "recognizer = main.load_recognizer(args)\n"
        "main.build_app(recognizer)\n"
        "faces = recognizer.analyze(data.astronaut())\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'fastai', 'timm', 'torchvision'})\n"
        "print(json.dumps({'faces': len(faces), 'heavy': heavy, 'backend': recognizer.predictor.backend_used}))\n"
    )
    report = json.loads(run_cli("-c", code).stdout.strip().splitlines()[-1])
    assert report == {"faces": 1, "heavy": [], "backend": "onnx"}


def test_app_serves_an_onnx_model(tiny_model, tmp_path, astronaut):
    from gradio_client import Client, handle_file
    from PIL import Image

    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    with running_app(tiny_model.with_suffix(".onnx")) as (url, proc, log):
        annotated, status, faces, *labels = Client(url, verbose=False).predict(handle_file(str(path)),
                                                                               api_name="/analyze")
    assert status == "Found 1 face." and len(faces[0]["probabilities"]) == 7


def test_default_install_leaves_training_to_the_train_extra():
    import re

    import tomllib
    from conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}

    serving, train = names(project["dependencies"]), names(project["optional-dependencies"]["train"])
    assert {"onnxruntime", "opencv-python-headless", "gradio", "matplotlib", "av"} <= serving
    assert {"torch", "torchvision", "fastai", "timm", "scikit-learn"} <= train and not serving & train


def test_evaluate_accepts_an_onnx_model_and_agrees_with_the_pkl(tiny_model, tiny_data, tmp_path):
    figures = {}
    for suffix in (".pkl", ".onnx"):
        out = tmp_path / f"eval{suffix}.json"
        run_cli("-m", "fer.evaluate", "--model", str(tiny_model.with_suffix(suffix)), "--data", str(tiny_data / "test"),
                "--json", str(out))
        figures[suffix] = json.loads(out.read_text())
    assert figures[".onnx"]["n"] == 21 and figures[".onnx"]["confusion_matrix"] == figures[".pkl"]["confusion_matrix"]


def test_fer_model_names_the_model_when_none_is_given(tiny_model, tmp_path, monkeypatch):
    """``--model``, else ``$FER_MODEL``, else the packaged model: for fer.load(), the commands and the app."""
    import fer
    from fer.core.card import DEFAULT_MODEL, default_model
    from fer.serving.onnx_predict import OnnxFacePredictor

    assert default_model() == DEFAULT_MODEL and DEFAULT_MODEL.is_file()
    tiny = tiny_model.with_suffix(".onnx")
    monkeypatch.setenv("FER_MODEL", str(tiny))
    assert default_model() == tiny
    assert fer.load().classes == OnnxFacePredictor.load(tiny).classes
    result = run_cli("-m", "fer.analyze", str(tmp_path / "missing.jpg"), check=False)
    assert "missing.jpg" in result.stderr
    monkeypatch.setenv("FER_MODEL", str(tmp_path / "nowhere.onnx"))
    with pytest.raises(ModelLoadError, match="nowhere.onnx: not found"):
        fer.load()
