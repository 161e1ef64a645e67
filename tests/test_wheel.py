"""The package as users install it: ``python -m build`` makes an sdist and a wheel (from the sdist), the wheel
goes into a fresh virtual environment (no torch, fastai or timm), and everything runs from a folder outside any
checkout with its defaults: ``fer-analyze``, ``fer-video``, ``fer.load().analyze`` and ``fer-app`` (a photo and a
video through the running server, webcam frames through the stream function, the live view's files); a ``.pkl``
or a training command is a one-line message naming the extra to install.

It needs PyPI (or pip's cache after scripts/setup.sh) to build the environment
(``FER_WHEEL_PYTHON=/path/to/venv/bin/python`` reuses one that has the wheel installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image

from fer.evaluation.scenes import write_clip
from fer_app.testing import running_app

pytestmark = pytest.mark.slow
TRAINING = ("torch", "torchvision", "fastai", "timm", "sklearn", "onnx")
INSTALL_TRAIN = 'pip install -e ".[train]"'


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel of this checkout, as ``python -m build`` makes them."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True,
                            text=True, cwd=out)
    assert result.returncode == 0, f"python -m build failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def light_python(tmp_path_factory, dist) -> str:
    """The interpreter of a fresh venv holding the wheel (``FER_WHEEL_PYTHON``: use that interpreter of such a
    venv instead, to try changes without building one each time)."""
    if os.environ.get("FER_WHEEL_PYTHON"):
        return os.environ["FER_WHEEL_PYTHON"]
    venv = tmp_path_factory.mktemp("venv-wheel")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    wheel = next(dist.glob("*.whl"))
    result = subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                            cwd=venv)
    assert result.returncode == 0, f"pip install {wheel.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    print(f"wheel venv made in {time.perf_counter() - start:.0f} s")
    return python


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A working folder outside any checkout."""
    return tmp_path_factory.mktemp("elsewhere")


def run_light(python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``args`` under the venv's interpreter (a console script when the first is one of its commands), in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FER_MODEL")}  # only what the venv holds
    bin_dir = Path(python).parent
    command = [str(bin_dir / args[0]), *args[1:]] if (bin_dir / args[0]).is_file() else [python, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_the_model_the_page_and_no_training_artefact(dist):
    wheel = next(dist.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.onnx",
                   "fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.json",
                   "fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.suite.json",
                   "fer/models/yunet/yunet_n_320_320.onnx", "fer/models/yunet/yunet_n_dynamic.onnx",
                   "fer/models/yunet/LICENSE-yunet-apache-2.0.txt", "fer_app/static/live/main.js",
                   "fer_app/static/vendor/onnxruntime-web/ort.wasm.min.mjs", "fer_app/page/live_view.js",
                   "fer_app/examples/astronaut.jpg", "fer_app/examples/two_faces.jpg", "fer_app/examples/clip.mp4",
                   "fer_app/examples/LICENSE.md"):
        assert needed in names, f"{needed} is not in {wheel.name}"
    assert not [n for n in names if n.endswith(".pkl") or "webgpu" in n or "asyncify" in n]
    assert wheel.name.startswith("fer_realtime-") and any(p.name.endswith(".tar.gz") for p in dist.iterdir())
    print(f"{wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB")


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", 320, 240, 20, 10)


def test_the_wheel_venv_has_no_training_libraries_and_no_checkout(light_python, outside):
    code = (f"import importlib.util, fer; print([m for m in {TRAINING!r} if importlib.util.find_spec(m)], "
            f"'site-packages' in fer.__file__)")
    assert run_light(light_python, "-c", code, cwd=outside).stdout.strip() == "[] True"


def test_app_serves_photos_videos_and_the_live_view_with_its_default_model(light_python, photo, clip, outside):
    from gradio_client import Client, handle_file

    with running_app(None, python=light_python, cwd=outside) as (url, _, log):
        for file in ("fer-live/model.onnx", "fer-live/yunet.onnx", "fer-live/static/live/main.js",
                     "fer-live/static/vendor/onnxruntime-web/ort.wasm.min.mjs"):
            with urllib.request.urlopen(url + file) as r:
                assert r.status == 200 and len(r.read()) > 1000, file
        client = Client(url, verbose=False)
        _, status, faces, *_ = client.predict(handle_file(str(photo)), api_name="/analyze")
        assert status == "Found 1 face." and faces[0]["label"] == "happy"
        video, plot, table, status = client.predict(handle_file(str(clip)), api_name="/analyze_video")
        assert status.startswith("20 frames (320×240)") and "faces #1" in status
        video = video.get("video") if isinstance(video, dict) else video
        assert video.endswith(".mp4") and Path(plot).stat().st_size > 0 and Path(table).stat().st_size > 0
        log.seek(0)
        started = log.read()
    assert "fer2013_effnet_lite0.onnx" in started and "site-packages" in started and "Traceback" not in started


def test_webcam_stream_function_annotates_frames(light_python, photo, outside):
    """gradio_client cannot call a streaming endpoint, so the Webcam tab's own function is called directly."""
    code = f"""
from fer.core.images import load_image
from fer.serving.recognize import FaceRecognizer
from fer_app.layout import build_app
demo = build_app(FaceRecognizer.load()).blocks
stream = next(f.fn for f in demo.fns.values() if f.api_name == "stream")
frame = load_image({str(photo)!r})
session = timeline = None
for _ in range(3):
    annotated, probs, session, plot, timeline = stream(frame, session, timeline)
print(annotated.shape, max(probs, key=probs.get), session.frames)
"""
    result = run_light(light_python, "-c", code, cwd=outside)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-5:] == ["(512,", "512,", "3)", "happy", "3"]


def test_analyze_video_and_the_api_run_with_their_defaults(light_python, photo, clip, tmp_path, outside):
    result = run_light(light_python, "fer-analyze", str(photo), cwd=outside)
    assert result.returncode == 0 and "happy" in result.stdout and "1 of 1 file read, 1 face found" in result.stderr
    result = run_light(light_python, "fer-video", str(clip), "--out", str(tmp_path / "out"), "--quiet", cwd=outside)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "scene.json").read_text())
    assert summary["complete"] and summary["outputs"]["plots"] and (tmp_path / "out" / "scene.csv").exists()
    import av

    with av.open(str(tmp_path / "out" / "scene.annotated.mp4")) as video:
        assert video.streams.video[0].codec_context.name == "h264" and video.streams.video[0].frames == 20
    code = (f"import fer; m = fer.load(); print(m.analyze({str(photo)!r})[0].label, "
            f"len(m.video({str(clip)!r})), m.video({str(clip)!r}).attrs['complete'])")
    result = run_light(light_python, "-c", code, cwd=outside)
    assert result.returncode == 0, result.stderr[-3000:]
    label, rows, complete = result.stdout.split()
    assert label == "happy" and int(rows) > 0 and complete == "True"


def test_fer_web_builds_the_static_site_from_the_wheel(light_python, tmp_path, outside):
    """Issue 34: the static site comes from the installed package alone (page, modules, runtime, both models)."""
    site = tmp_path / "site"
    result = run_light(light_python, "fer-web", "build", str(site), cwd=outside)
    assert result.returncode == 0, result.stderr[-3000:]
    for needed in ("index.html", "sw.js", "manifest.json", "live/config.json", "live/fer.js", "live/worker.js",
                   "models/fer2013_effnet_lite0.onnx", "models/yunet_n_dynamic.onnx"):
        assert (site / needed).is_file(), needed
    assert list((site / "vendor" / "onnxruntime-web").glob("*.wasm"))
    config = json.loads((site / "live" / "config.json").read_text())
    assert config["modelUrl"] == "../models/fer2013_effnet_lite0.onnx" and config["notSure"]
    worker = (site / "sw.js").read_text()
    assert "__FILES__" not in worker and "models/fer2013_effnet_lite0.onnx" in worker


@pytest.mark.parametrize("args", [
    ("fer-analyze", "PHOTO", "--model", "PKL"),
    ("fer-app", "--model", "PKL"),
    ("fer-train", "--data", "DATA", "--out", "OUT/m.pkl"),
    ("fer-evaluate", "--data", "DATA/test"),
    ("-m", "fer.export", "PKL", "--out", "OUT/m.onnx"),
], ids=["analyze-pkl", "app-pkl", "finetune", "evaluate", "export"])
def test_training_needs_are_one_line_naming_the_extra(light_python, photo, tiny_data, tmp_path, outside, args):
    pkl = str(ROOT / "exports" / "fer2013_effnet_lite0.pkl")
    args = [a.replace("PHOTO", str(photo)).replace("DATA", str(tiny_data)).replace("OUT", str(tmp_path))
            .replace("PKL", pkl) for a in args]
    result = run_light(light_python, *args, cwd=outside)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and INSTALL_TRAIN in lines[0], result.stderr
