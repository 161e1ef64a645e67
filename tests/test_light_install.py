"""The default (light) install in a virtual environment of its own, as the README's *Serve without torch* makes
it: ``python -m venv`` + ``pip install -e .``, so no torch, fastai or timm. With no ``--model`` (the shipped
``.onnx``), the app serves all three tabs (a photo and a video through the running server, webcam frames
through the stream function), and ``fer.analyze``, ``fer.video`` and ``fer.load()`` work; a ``.pkl`` or a
training command is a one-line message naming the extra to install.

It needs PyPI (or pip's cache after scripts/setup.sh) to build the environment
(``FER_LIGHT_PYTHON=/path/to/venv/bin/python`` reuses one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from apprunner import running_app
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks.video_clips import write_clip  # noqa: E402

pytestmark = pytest.mark.slow
TRAINING = ("torch", "torchvision", "fastai", "timm", "sklearn", "onnx")
INSTALL_TRAIN = 'pip install -e ".[train]"'


@pytest.fixture(scope="module")
def light_python(tmp_path_factory) -> str:
    """The interpreter of a fresh venv holding this checkout's default install (``FER_LIGHT_PYTHON``: use that
    interpreter of such a venv instead, to try changes without building one each time)."""
    if os.environ.get("FER_LIGHT_PYTHON"):
        return os.environ["FER_LIGHT_PYTHON"]
    venv = tmp_path_factory.mktemp("venv-light")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    result = subprocess.run([python, "-m", "pip", "install", "-q", "-e", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, f"pip install -e . failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    print(f"light venv made in {time.perf_counter() - start:.0f} s")
    return python


def run_light(python: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the venv itself holds
    return subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", 320, 240, 20, 10)


def test_the_light_venv_has_no_training_libraries(light_python):
    code = f"import importlib.util; print([m for m in {TRAINING!r} if importlib.util.find_spec(m)])"
    assert run_light(light_python, "-c", code).stdout.strip() == "[]"


def test_app_serves_photos_and_videos_with_its_default_model(light_python, photo, clip):
    from gradio_client import Client, handle_file

    with running_app(None, python=light_python) as (url, _, log):
        client = Client(url, verbose=False)
        _, status, faces, *_ = client.predict(handle_file(str(photo)), api_name="/analyze")
        assert status == "Found 1 face." and faces[0]["label"] == "happy"
        video, plot, table, status = client.predict(handle_file(str(clip)), api_name="/analyze_video")
        assert status.startswith("20 frames (320×240)") and "faces #1" in status
        video = video.get("video") if isinstance(video, dict) else video
        assert video.endswith(".mp4") and Path(plot).stat().st_size > 0 and Path(table).stat().st_size > 0
        log.seek(0)
        started = log.read()
    assert "fer2013_effnet_lite0.onnx" in started and "Traceback" not in started


def test_webcam_stream_function_annotates_frames(light_python, photo):
    """gradio_client cannot call a streaming endpoint, so the Webcam tab's own function is called directly."""
    code = f"""
from fer.images import load_image
from fer.recognize import FaceRecognizer
from fer_app.main import build_app
demo = build_app(FaceRecognizer.load())
stream = next(f.fn for f in demo.fns.values() if f.api_name == "stream")
frame = load_image({str(photo)!r})
session = timeline = None
for _ in range(3):
    annotated, probs, session, plot, timeline = stream(frame, session, timeline)
print(annotated.shape, max(probs, key=probs.get), session.frames)
"""
    result = run_light(light_python, "-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-5:] == ["(512,", "512,", "3)", "happy", "3"]


def test_analyze_video_and_the_api_run_with_their_defaults(light_python, photo, clip, tmp_path):
    result = run_light(light_python, "-m", "fer.analyze", str(photo))
    assert result.returncode == 0 and "happy" in result.stdout and "1 of 1 file read, 1 face found" in result.stderr
    result = run_light(light_python, "-m", "fer.video", str(clip), "--out", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "scene.json").read_text())
    assert summary["complete"] and summary["outputs"]["plots"] and (tmp_path / "out" / "scene.csv").exists()
    import av

    with av.open(str(tmp_path / "out" / "scene.annotated.mp4")) as video:
        assert video.streams.video[0].codec_context.name == "h264" and video.streams.video[0].frames == 20
    code = (f"import fer; m = fer.load(); print(m.analyze({str(photo)!r})[0].label, "
            f"len(m.video({str(clip)!r})), m.video({str(clip)!r}).attrs['complete'])")
    result = run_light(light_python, "-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    label, rows, complete = result.stdout.split()
    assert label == "happy" and int(rows) > 0 and complete == "True"


@pytest.mark.parametrize("args", [
    ("-m", "fer.analyze", "PHOTO", "--model", "exports/fer2013_effnet_lite0.pkl"),
    ("app/main.py", "--model", "exports/fer2013_effnet_lite0.pkl"),
    ("-m", "fer.finetune", "--data", "DATA", "--out", "OUT/m.pkl"),
    ("-m", "fer.evaluate", "--data", "DATA/test"),
    ("-m", "fer.export", "exports/fer2013_effnet_lite0.pkl", "--out", "OUT/m.onnx"),
], ids=["analyze-pkl", "app-pkl", "finetune", "evaluate", "export"])
def test_training_needs_are_one_line_naming_the_extra(light_python, photo, tiny_data, tmp_path, args):
    args = [a.replace("PHOTO", str(photo)).replace("DATA", str(tiny_data)).replace("OUT", str(tmp_path)) for a in args]
    result = run_light(light_python, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and INSTALL_TRAIN in lines[0], result.stderr
