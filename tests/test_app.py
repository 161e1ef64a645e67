"""The launched app through gradio_client: real photos, no-face photos, bad files, start-up errors."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli
from PIL import Image

from fer_app.testing import running_app


@pytest.fixture(scope="module")
def app(tiny_model):
    with running_app(tiny_model) as (url, proc, log):
        yield url, proc, log


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app[0], verbose=False)


def save(tmp_path, name: str, array: np.ndarray | None = None, raw: bytes | None = None):
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        Image.fromarray(array).save(path)
    return str(path)


def analyze(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(path), api_name="/analyze")


def test_astronaut_gives_one_face_with_seven_probabilities(client, tmp_path, astronaut):
    annotated, status, faces, *labels = analyze(client, save(tmp_path, "astronaut.png", astronaut))
    assert status == "Found 1 face." and len(faces) == 1
    box = faces[0]["box"]
    assert 150 < box["x"] < 200 and 40 < box["y"] < 90 and 0.5 < box["score"] <= 1  # YuNet, the default detector
    assert set(box["landmarks"]) == {"right_eye", "left_eye", "nose", "mouth_right", "mouth_left"}
    probs = faces[0]["probabilities"]
    assert len(probs) == 7 and abs(sum(probs.values()) - 1) < 1e-4
    panel = labels[0].get("value", labels[0])  # a component update carries its value inside
    confidences = panel["confidences"]
    assert len(confidences) == 7 and max(confidences, key=lambda c: c["confidence"])["label"] == faces[0]["predicted"]
    assert Image.open(annotated).size == (512, 512)


def test_photo_without_face_is_a_clean_answer(client, tmp_path):
    from skimage import data

    annotated, status, faces, *labels = analyze(client, save(tmp_path, "coffee.png", data.coffee()))
    assert "No face found" in status and faces == [] and annotated is not None


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("name, raw", [
    ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50),
    ("notes.jpg", b"just some text, renamed\n" * 10),
    ("dot.png", encode(Image.new("RGB", (1, 1)), "PNG")),
])
def test_bad_uploads_get_a_message_and_the_server_keeps_answering(client, app, tmp_path, astronaut, name, raw):
    annotated, status, faces, *labels = analyze(client, save(tmp_path, name, raw=raw))
    assert "Cannot use this file" in status and faces == [] and annotated is None
    assert "Found 1 face" in analyze(client, save(tmp_path, "a.png", astronaut))[1]
    assert app[1].poll() is None


@pytest.mark.parametrize("kind", ["RGBA", "16-bit grey", "CMYK", "animated GIF", "6000x6000 JPEG"])
def test_unusual_but_valid_uploads_are_analysed(client, tmp_path, astronaut, kind):
    photo = Image.fromarray(astronaut)
    raw, name = {
        "RGBA": lambda: (encode(photo.convert("RGBA"), "PNG"), "a.png"),
        "16-bit grey": lambda: (encode(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG"), "g.png"),
        "CMYK": lambda: (encode(photo.convert("CMYK"), "JPEG"), "c.jpg"),
        "animated GIF": lambda: (encode(photo.convert("P"), "GIF", save_all=True,
                                        append_images=[photo.convert("P").rotate(30)], duration=100), "a.gif"),
        "6000x6000 JPEG": lambda: (encode(photo.resize((6000, 6000)), "JPEG", quality=85), "big.jpg"),
    }[kind]()
    annotated, status, faces, *labels = analyze(client, save(tmp_path, name, raw=raw))
    assert annotated is not None and ("Found" in status or "No face found" in status), status
    width, height = Image.open(annotated).size
    assert max(width, height) <= 1920


@pytest.mark.parametrize("content, problem", [(None, "not found"), (b"truncated" * 3, "not a readable fastai learner")])
def test_model_problems_stop_start_up_with_a_clear_message(tmp_path, tiny_model, content, problem):
    path = tmp_path / "model.pkl"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("app/main.py", "--model", str(path), check=False, timeout=120)
    assert result.returncode == 2 and str(path) in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_and_foreign_pickles_are_refused(tmp_path, tiny_model):
    import pickle

    from fer.training.predict import ModelLoadError, load_learner_file

    half = tmp_path / "half.pkl"
    half.write_bytes(tiny_model.read_bytes()[: tiny_model.stat().st_size // 2])
    other = tmp_path / "dict.pkl"
    other.write_bytes(pickle.dumps({"not": "a learner"}))
    for path in (half, other):
        with pytest.raises(ModelLoadError, match=str(path)):
            load_learner_file(path)


def test_a_learner_exported_under_another_python_is_refused_before_unpickling(tmp_path, tiny_model):
    import json
    import platform
    import shutil

    from fer.serving.model_files import load_predictor
    from fer.training.predict import ModelLoadError

    path = shutil.copy(tiny_model, tmp_path / "model.pkl")
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert card["versions"]["python"] == platform.python_version()  # the card says where it was exported
    major, minor = platform.python_version_tuple()[:2]
    other = f"{major}.{int(minor) + 1}.0"
    card["versions"]["python"] = other
    (tmp_path / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=f"exported under Python {other}.*model.onnx"):
        load_predictor(path)
    card["versions"]["python"] = f"{major}.{minor}.99"  # another patch release is fine
    (tmp_path / "model.json").write_text(json.dumps(card))
    assert load_predictor(path).classes == card["classes"]


def test_share_offline_keeps_serving_locally_and_says_so(tiny_model):
    from gradio_client import Client

    with running_app(tiny_model, "--share") as (url, proc, log):
        assert Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert proc.poll() is None
        deadline = time.time() + 60
        while "serving on" not in (text := log_text(log)) and time.time() < deadline:
            time.sleep(0.5)
        assert "no public link" in text and f"serving on {url} only" in text
        assert "share=True" not in text and "Could not create share link" not in text.split("no public link")[0]


def log_text(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def test_haar_detector_option_and_bad_options(tiny_model, tmp_path, astronaut):
    from gradio_client import Client, handle_file

    with running_app(tiny_model, "--detector", "haar", "--min-face", "40") as (url, proc, log):
        annotated, status, faces, *labels = Client(url, verbose=False).predict(
            handle_file(save(tmp_path, "a.png", astronaut)), api_name="/analyze")
        assert status == "Found 1 face." and "landmarks" not in faces[0]["box"]
    for bad, message in ((["--score", "1.5"], "--score 1.5: must be between 0 and 1"),
                         (["--detector", "mtcnn"], "invalid choice: 'mtcnn'")):
        result = run_cli("app/main.py", "--model", str(tiny_model), *bad, check=False, timeout=120)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_sigterm_removes_uploads_and_results(tiny_model, tmp_path, astronaut):
    import re

    from gradio_client import Client, handle_file

    with running_app(tiny_model) as (url, proc, log):
        Client(url, verbose=False).predict(handle_file(save(tmp_path, "a.png", astronaut)), api_name="/analyze")
        folder = Path(re.search(r"temporary files: (\S+)", log_text(log)).group(1))
        kept = [p for p in folder.rglob("*") if p.is_file()]
        assert any(p.suffix == ".png" for p in kept) and any(p.suffix == ".jpg" for p in kept)  # upload, result
        proc.terminate()  # SIGTERM, as a service manager stops it
        proc.wait(timeout=30)
    assert not folder.exists()


def test_result_files_are_unique_and_swept(astronaut):
    from fer_app.files import ResultFiles

    files = ResultFiles(keep_s=60)
    first, second = files.save(astronaut), files.save(astronaut)
    assert first != second  # identical results never share a file that a second request could rewrite
    assert Image.open(first).size == Image.open(second).size == (astronaut.shape[1], astronaut.shape[0])
    files.keep_s = 0
    third = files.save(astronaut)
    assert [p.name for p in files.dir.iterdir()] == [Path(third).name]
    files.close()
    assert not files.dir.exists()  # nothing left behind in the temp folder


def test_the_page_states_the_shipped_models_accuracy_in_words_from_the_suites_file():
    """The "How accurate is it?" fold: the packaged figures beside the model (fer.evaluate --suite --beside), which
    are the suite's PrivateTest run, as shares of faces, with the command and file they come from."""
    import json

    from fer.core.card import DEFAULT_MODEL, suite_figures
    from fer.serving.recognize import FaceRecognizer
    from fer_app.markup import accuracy_text, describe

    shipped = next(r for r in json.loads((ROOT / "docs" / "results" / "suite" / "private.json").read_text()).values()
                   if r["model"] == "exports/fer2013_effnet_lite0.onnx")
    assert suite_figures(DEFAULT_MODEL) == shipped
    text = accuracy_text(DEFAULT_MODEL)
    plain = shipped["cells"]["plain"]
    assert f"{plain['fer2013']['n']:,} photos of faces" in text and "PrivateTest" in text
    assert f"label for {100 * plain['fer2013']['accuracy']:.0f}%" in text
    assert f"{100 * plain['ferplus']['accuracy']:.0f}%" in text
    assert f"found {100 * shipped['cells']['crops upright']['detected']:.0f}% of the time" in text
    assert "python -m fer.evaluate --suite --usage PrivateTest" in text and "fer2013_effnet_lite0.suite.json" in text
    assert accuracy_text(Path("elsewhere/model.onnx")) is None  # a model the suite never saw: no fold
    recognizer = FaceRecognizer.load(DEFAULT_MODEL)
    opening = describe(recognizer)
    assert opening.count("\n") == 1 and opening.count(". ") == 0  # the title and one sentence
