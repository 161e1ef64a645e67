"""The evaluation suite: how a model does on the faces the app serves, against both label sets.

    python -m fer.evaluate --suite --model exports/fer2013_effnet_lite0.onnx --usage PublicTest \\
        --json docs/results/suite/shipped_public.json

Three sets of faces from one FER-2013 split (PublicTest selects models; PrivateTest is measured once per
shipped model):

- ``plain``: the 48×48 faces themselves;
- ``crops upright`` / ``crops tilted``: each face pasted into a 640×480 background photo (:mod:`fer.evaluation.scenes`,
  48–240 px wide, upright or tilted 10–25°), found by YuNet at the app's photo settings and cut with the
  app's crop (:class:`fer.serving.detect.CropSpec`), as ``benchmarks/crop_accuracy.py`` does. Faces YuNet misses
  are left out (the detection rate is reported).

Each set is scored against the FER-2013 labels and the FER+ crowd's majority labels (the 7 classes; faces
whose majority is contempt, unknown or not a face are left out): accuracy, balanced accuracy (mean
per-class recall), macro-F1, per-class recall and the expected calibration error. The **serving score**
is the mean balanced accuracy over the six cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

SETS = ("plain", "crops upright", "crops tilted")
LABEL_SETS = ("fer2013", "ferplus")
ECE_BINS = 15


@dataclass
class FaceSet:
    """Grey 48×48 faces (as the classifier gets them) with both labels; ``total`` faces were tried."""

    faces: list[np.ndarray] = field(default_factory=list)
    fer2013: list[str] = field(default_factory=list)
    ferplus: list[str | None] = field(default_factory=list)  # None: no 7-class majority
    total: int = 0


@dataclass
class SuiteFaces:
    """Every set of one split, built once and scored for any number of models."""

    usage: str
    sets: dict[str, FaceSet]
    seed: int
    seconds: float


def fer_split(csv: str | Path, ferplus_csv: str | Path, usage: str) -> tuple[list[np.ndarray], list[str], list[str | None]]:
    """The faces of one FER-2013 split with their FER-2013 labels and FER+ 7-class majority labels."""
    from fer.core.dataset import ferplus_majority, read_rows
    from fer.core.labels import FER2013_CLASSES

    majority = ferplus_majority(ferplus_csv)
    rows = [r for r in read_rows(Path(csv)) if r.usage == usage]
    if not rows:
        raise ValueError(f"{csv}: no {usage} rows")
    if rows[-1].index >= len(majority):
        raise ValueError(f"{ferplus_csv}: {len(majority)} rows, fewer than {csv}; the files must be row-aligned")
    ferplus = [m if m in FER2013_CLASSES else None for m in (majority[r.index] for r in rows)]
    return [r.pixels for r in rows], [FER2013_CLASSES[r.label] for r in rows], ferplus


def detector_crops(faces: Sequence[np.ndarray], tilted: bool, seed: int, detector,
                   progress: bool = True) -> tuple[list[np.ndarray], list[int]]:
    """Each face pasted into a background scene (:func:`fer.evaluation.scenes.random_scene`), found by ``detector`` and cut
    with the app's crop: ``(48×48 grey crops, indices of the faces found)``."""
    from fer.core.cli import progress as progress_bar
    from fer.core.images import to_grey
    from fer.evaluation.scenes import SCENE_SIZE, match, random_scene, scene_backgrounds
    from fer.serving.detect import CropSpec, face_crop
    from fer.serving.faces import to_face

    rng = np.random.default_rng(seed)
    backgrounds = scene_backgrounds(SCENE_SIZE)
    crops, found = [], []
    label = "crops tilted" if tilted else "crops upright"
    for i, pixels in enumerate(progress_bar(faces, desc=label, unit="face", disable=not progress)):
        scene, truth = random_scene(pixels, rng, backgrounds, tilted)
        matched, _ = match(detector.detect(scene), [truth])
        if 0 in matched:
            crops.append(to_face(face_crop(to_grey(scene), matched[0], CropSpec())))
            found.append(i)
    return crops, found


def suite_faces(csv: str | Path, ferplus_csv: str | Path, usage: str = "PublicTest", seed: int = 0,
                limit: int | None = None, progress: bool = True, cache: str | Path | None = None) -> SuiteFaces:
    """Every set of the suite for one split (the scenes depend only on ``seed``). With a ``cache`` folder the
    sets are kept there, keyed by the two files' SHA-256, the split, seed and limit, and built only once."""
    from fer.core.fileio import sha256

    key = f"{usage}-seed{seed}-{limit or 'all'}-{sha256(csv)[:12]}-{sha256(ferplus_csv)[:12]}"
    path = Path(cache) / f"suite-{key}.npz" if cache else None
    if path is not None and path.exists():
        return load_faces(path, usage, seed)
    faces = build_faces(csv, ferplus_csv, usage, seed, limit, progress)
    if path is not None:
        save_faces(faces, path)
    return faces


def save_faces(faces: SuiteFaces, path: Path) -> None:
    """Keep ``faces`` in one compressed ``.npz`` file at ``path`` (written atomically)."""
    from fer.core.fileio import atomic_path

    arrays = {"seconds": np.float64(faces.seconds)}
    for i, face_set in enumerate(faces.sets.values()):
        arrays |= {f"faces{i}": np.array(face_set.faces, np.uint8).reshape(-1, 48, 48),
                   f"fer2013_{i}": np.array(face_set.fer2013), f"total{i}": np.int64(face_set.total),
                   f"ferplus{i}": np.array(["" if y is None else y for y in face_set.ferplus])}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_faces(path: Path, usage: str, seed: int) -> SuiteFaces:
    """The sets :func:`save_faces` kept at ``path``."""
    with np.load(path) as saved:
        sets = {name: FaceSet(list(saved[f"faces{i}"]), [str(y) for y in saved[f"fer2013_{i}"]],
                              [str(y) or None for y in saved[f"ferplus{i}"]], int(saved[f"total{i}"]))
                for i, name in enumerate(SETS)}
        return SuiteFaces(usage, sets, seed, float(saved["seconds"]))


def build_faces(csv: str | Path, ferplus_csv: str | Path, usage: str, seed: int, limit: int | None,
                progress: bool) -> SuiteFaces:
    """Build every set of the suite: the split's plain faces, then each pasted into a scene and cut out by YuNet,
    upright and tilted."""
    from fer.serving.detect import make_detector
    from fer.serving.recognize import PHOTO_DETECT_WIDTH

    start = time.perf_counter()
    faces, fer2013, ferplus = fer_split(csv, ferplus_csv, usage)
    if limit:
        faces, fer2013, ferplus = faces[:limit], fer2013[:limit], ferplus[:limit]
    sets = {"plain": FaceSet(list(faces), list(fer2013), list(ferplus), len(faces))}
    detector = make_detector("yunet", PHOTO_DETECT_WIDTH)
    for tilted in (False, True):
        crops, found = detector_crops(faces, tilted, seed + tilted, detector, progress)
        sets[SETS[1 + tilted]] = FaceSet(crops, [fer2013[i] for i in found], [ferplus[i] for i in found], len(faces))
    return SuiteFaces(usage, sets, seed, time.perf_counter() - start)


def expected_calibration_error(probs: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """The mean gap between confidence (the top probability) and accuracy over ``bins`` equal-width confidence
    bins, each weighted by its share of the faces."""
    confidence = probs.max(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(gap)


def cell_metrics(probs: np.ndarray, labels: Sequence[str | None], classes: Sequence[str]) -> dict:
    """The figures of one cell; faces whose label is None are left out."""
    from fer.evaluation.metrics import metrics

    keep = np.array([y is not None for y in labels], bool)
    probs, truth = probs[keep], [y for y in labels if y is not None]
    if not truth:  # no face of this set was found (or labelled): nothing was classified right
        return {"n": 0, "accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0,
                "recall": {c: 0.0 for c in classes}, "ece": 0.0, "confusion_matrix": []}
    predicted = [classes[i] for i in probs.argmax(axis=1)]
    scored = metrics(truth, predicted, classes)
    present = [c for c in classes if scored["per_class"][c]["support"]]
    recall = {c: scored["per_class"][c]["recall"] for c in classes}
    return {
        "n": scored["n"], "accuracy": scored["accuracy"],
        "balanced_accuracy": float(np.mean([recall[c] for c in present])),
        "macro_f1": scored["macro_f1"], "recall": recall,
        "ece": expected_calibration_error(probs, np.array(truth) == np.array(predicted)),
        "confusion_matrix": scored["confusion_matrix"],
    }


def run_suite(predictor, faces: SuiteFaces, tta: str = "none") -> dict:
    """Score ``predictor`` (any :class:`fer.serving.model_files.Predictor`) on every cell of ``faces``."""
    start = time.perf_counter()
    classes = list(predictor.classes)
    cells = {}
    for name, face_set in faces.sets.items():
        probs = predictor.predict_proba(face_set.faces, tta=tta) if face_set.faces else np.zeros((0, len(classes)))
        cells[name] = {"detected": len(face_set.faces) / max(face_set.total, 1),
                       **{labels: cell_metrics(probs, getattr(face_set, labels), classes) for labels in LABEL_SETS}}
    return {
        "usage": faces.usage, "tta": tta, "seed": faces.seed, "classes": classes, "cells": cells,
        "serving_score": serving_score(cells),
        "seconds": {"faces": round(faces.seconds, 1), "model": round(time.perf_counter() - start, 1)},
    }


def serving_score(cells: dict) -> float:
    """Mean balanced accuracy over the six cells (three sets of faces × two label sets)."""
    return float(np.mean([cells[s][labels]["balanced_accuracy"] for s in SETS for labels in LABEL_SETS]))


def format_table(results: dict[str, dict]) -> str:
    """A Markdown table of one or more models' suites (name → :func:`run_suite` result), side by side."""
    names = list(results)
    first = results[names[0]]
    head = f"| {first['usage']}, TTA {first['tta']} | " + " | ".join(names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|",
             "| **serving score** (mean balanced accuracy, 6 cells) | "
             + " | ".join(f"**{100 * r['serving_score']:.2f}**" for r in results.values()) + " |"]
    classes = first["classes"]
    for s in SETS:
        for labels in LABEL_SETS:
            cell = [r["cells"][s][labels] for r in results.values()]
            lines.append(f"| {s}, {labels} labels: balanced accuracy / accuracy / macro-F1 / ECE | " + " | ".join(
                f"{100 * c['balanced_accuracy']:.2f} / {100 * c['accuracy']:.2f} / {c['macro_f1']:.3f} / {c['ece']:.3f}"
                for c in cell) + " |")
        if s != "plain":
            lines.append(f"| {s}: faces found | "
                         + " | ".join(f"{100 * r['cells'][s]['detected']:.1f}%" for r in results.values()) + " |")
    for labels in LABEL_SETS:
        for c in sorted(classes, key=lambda c: ["disgust", "fear", "sad"].index(c) if c in ("disgust", "fear", "sad") else 9):
            lines.append(f"| recall of {c}, {labels} labels: plain / crops upright / crops tilted | " + " | ".join(
                " / ".join(f"{r['cells'][s][labels]['recall'].get(c, 0):.2f}" for s in SETS) for r in results.values()) + " |")
    return "\n".join(lines) + "\n"
