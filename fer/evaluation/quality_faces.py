"""Faces seen well and badly, for measuring face quality (:mod:`fer.serving.quality`) and the "not sure" rule:
``benchmarks/quality_bands.py`` and ``benchmarks/not_sure.py``.

Each face of a FER-2013 split is pasted into a background photo (:mod:`fer.evaluation.scenes`) as the
evaluation suite does (``crops upright``, ``crops tilted``), and again made worse on purpose:

- ``smaller``: 12–40 px wide instead of 48–240;
- ``turned``: tilted 25–50° either way instead of 10–25°;
- ``blurred``: the scene blurred by a Gaussian of 0.8–3 px at the face's 48-px scale.

The app's photo path then finds it (YuNet at the photo width), cuts it (:meth:`FaceRecognizer.crops`) and
classifies it with the model's calibrated probabilities; faces YuNet misses are left out. The ``plain`` set is
the 48×48 faces themselves (no detector: their quality is their size, 48 px, and their sharpness). Each face
keeps its labels (FER-2013, FER+ majority), probabilities and quality measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: The sets, in order: the suite's two crop sets, three made worse on purpose, and the plain faces.
SETS = ("plain", "crops upright", "crops tilted", "smaller", "turned", "blurred")
DEGRADED = ("smaller", "turned", "blurred")
#: Each set's face widths (px), tilt (degrees either way) and blur (Gaussian sigma at the 48-px face scale).
SCENES = {
    "crops upright": {"widths": (48.0, 240.0), "tilt": (0.0, 0.0), "blur": (0.0, 0.0)},
    "crops tilted": {"widths": (48.0, 240.0), "tilt": (10.0, 25.0), "blur": (0.0, 0.0)},
    "smaller": {"widths": (12.0, 40.0), "tilt": (0.0, 0.0), "blur": (0.0, 0.0)},
    "turned": {"widths": (48.0, 240.0), "tilt": (25.0, 50.0), "blur": (0.0, 0.0)},
    "blurred": {"widths": (48.0, 240.0), "tilt": (0.0, 0.0), "blur": (0.8, 3.0)},
}
#: The quality measures kept per face, in this order (:class:`fer.serving.quality.FaceQuality`).
MEASURES = ("value", "size", "score", "roll", "yaw", "sharpness")


@dataclass
class QualityFaces:
    """One set's detected faces: labels (class indices; -1: no FER+ majority), probabilities, quality measures
    (:data:`MEASURES`; NaN where the detector gives none) and the face's true width, tilt and blur."""

    name: str
    total: int = 0
    fer2013: list[int] = field(default_factory=list)
    ferplus: list[int] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    measures: list[list[float]] = field(default_factory=list)
    truth: list[list[float]] = field(default_factory=list)  # width px, tilt degrees, blur sigma

    def arrays(self) -> dict[str, np.ndarray]:
        """The set as numpy arrays (label indices, probabilities, quality measures and the truth of each change)."""
        n_classes = len(self.probs[0]) if self.probs else 0
        return {"fer2013": np.array(self.fer2013, int), "ferplus": np.array(self.ferplus, int),
                "probs": np.array(self.probs, np.float32).reshape(-1, n_classes),
                "measures": np.array(self.measures, float).reshape(-1, len(MEASURES)),
                "truth": np.array(self.truth, float).reshape(-1, 3), "total": np.int64(self.total)}


def degraded_scene(pixels: np.ndarray, rng: np.random.Generator, backgrounds: list[np.ndarray],
                   widths: tuple[float, float], tilt: tuple[float, float],
                   blur: tuple[float, float]) -> tuple[np.ndarray, object, list[float]]:
    """One face pasted into a background as :func:`fer.evaluation.scenes.random_scene` does, with its width
    log-uniform in ``widths``, tilted by ``tilt`` degrees either way and the scene blurred by a Gaussian whose
    sigma is ``blur`` pixels at the 48-px face scale: ``(RGB scene, true box, [width, tilt, blur])``."""
    from fer.evaluation.scenes import fer_face, paste

    height, width = backgrounds[0].shape[:2]
    face_width = float(np.exp(rng.uniform(np.log(widths[0]), np.log(widths[1]))))
    angle = float(rng.choice((-1, 1)) * rng.uniform(*tilt))
    sigma = float(rng.uniform(*blur))
    half = face_width * 0.75
    center = (rng.uniform(half, width - half), rng.uniform(half, height - half))
    canvas = backgrounds[rng.integers(len(backgrounds))].copy()
    truth = paste(canvas, fer_face(pixels), face_width, center, angle, context=0.0, edge=0.02)
    if sigma > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma * face_width / 48)
    return canvas, truth, [face_width, angle, sigma]


def measures_of(quality) -> list[float]:
    """A :class:`fer.serving.quality.FaceQuality` as :data:`MEASURES` (NaN for a measure it lacks)."""
    return [np.nan if v is None else float(v) for v in
            (quality.value, quality.size, quality.score, quality.roll, quality.yaw, quality.sharpness)]


def label_index(classes: list[str], label: str | None) -> int:
    """The index of ``label`` in ``classes``; -1 when it has none (a face FER+ does not label)."""
    return classes.index(label) if label in classes else -1


def build_set(name: str, recognizer, faces: list[np.ndarray], fer2013: list[str], ferplus: list[str | None],
              seed: int, progress: bool = True) -> QualityFaces:
    """The set ``name`` (:data:`SETS`) of ``faces`` through ``recognizer``'s photo path."""
    from fer.core.cli import progress as progress_bar
    from fer.evaluation.scenes import SCENE_SIZE, match, scene_backgrounds
    from fer.serving.detect import Box
    from fer.serving.quality import face_quality

    classes = recognizer.classes
    out = QualityFaces(name, total=len(faces))
    if name == "plain":
        probs = recognizer.predictor.predict_proba(faces)
        for face, p, y13, yfp in zip(faces, probs, fer2013, ferplus):
            out.probs.append(p)
            out.measures.append(measures_of(face_quality(Box(0, 0, face.shape[1], face.shape[0]), face)))
            out.truth.append([float(face.shape[1]), 0.0, 0.0])
            out.fer2013.append(label_index(classes, y13))
            out.ferplus.append(label_index(classes, yfp))
        return out
    rng = np.random.default_rng([seed, SETS.index(name)])
    backgrounds = scene_backgrounds(SCENE_SIZE)
    for pixels, y13, yfp in zip(progress_bar(faces, desc=name, unit="face", disable=not progress), fer2013, ferplus):
        scene, truth, made = degraded_scene(pixels, rng, backgrounds, **SCENES[name])
        matched, _ = match(recognizer.detector.detect(scene), [truth])
        if 0 not in matched:
            continue
        face = recognizer.results([matched[0]], recognizer.crops(scene, [matched[0]]))[0]
        out.probs.append(np.array([face.probs[c] for c in classes], np.float32))
        out.measures.append(measures_of(face.quality))
        out.truth.append(made)
        out.fer2013.append(label_index(classes, y13))
        out.ferplus.append(label_index(classes, yfp))
    return out


def quality_faces(recognizer, csv: str | Path, ferplus_csv: str | Path, usage: str = "PublicTest",
                  sets: tuple[str, ...] = SETS, seed: int = 0, limit: int | None = None,
                  cache: str | Path | None = None, progress: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Every set of ``sets`` for one split, as arrays (:meth:`QualityFaces.arrays`). With a ``cache`` folder each
    set is kept there, keyed by the data files, the model file's checksum, the split, seed and limit."""
    from fer.core.fileio import atomic_path, sha256
    from fer.evaluation.suite import fer_split

    temperature = getattr(recognizer.predictor, "temperature", 1.0)
    key = (f"{usage}-seed{seed}-{limit or 'all'}-{sha256(csv)[:12]}-{sha256(ferplus_csv)[:12]}-"
           f"{recognizer.predictor.card.get('onnx', {}).get('sha256', 'model')[:12]}-t{temperature:.4f}")
    data = None
    out = {}
    for name in sets:
        path = Path(cache) / f"quality-{key}-{name.replace(' ', '_')}.npz" if cache else None
        if path is not None and path.exists():
            with np.load(path) as saved:
                out[name] = dict(saved)
            continue
        if data is None:
            data = fer_split(csv, ferplus_csv, usage)
            if limit:
                data = tuple(d[:limit] for d in data)
        arrays = build_set(name, recognizer, *data, seed=seed, progress=progress).arrays()
        out[name] = arrays
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)
    return out
