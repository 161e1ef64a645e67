"""Scoring a model on labelled faces (an image folder or the FER-2013 CSV): accuracy, per-class figures and
the confusion matrix, optionally on the detector's crops; the command is ``python -m fer.evaluate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

# only light imports up here: --help answers without loading torch or fastai
from fer.core.images import images_under
from fer.evaluation.metrics import metrics
from fer.serving.faces import tta_mode
from fer.serving.model_files import Predictor


@dataclass
class LabelledFaces:
    """Faces with their labels, where they came from, and the files skipped (with why)."""
    faces: list[np.ndarray]
    labels: list[str]
    source: str
    skipped: list[str]


def label_from_path(path: Path, classes: Sequence[str]) -> str | None:
    """The class of an image: its folder's name, or the start of its file name (``happy_01.jpg``)."""
    if path.parent.name in classes:
        return path.parent.name
    stem = path.stem.lower()
    return next((c for c in sorted(classes, key=len, reverse=True) if stem.startswith(c)), None)


#: Images larger than this (shorter side, pixels) are probably photos rather than face crops.
CROP_LIKE_SIDE = 160


def largest_face(image: np.ndarray, detector) -> np.ndarray | None:
    """The largest detected face cropped as the classifier expects (grey), or None when there is none."""
    from fer.core.images import to_grey
    from fer.serving.detect import CropSpec, face_crop

    boxes = detector.detect(image)
    if not boxes:
        return None
    return face_crop(to_grey(image), max(boxes, key=lambda b: b.area), CropSpec())


def load_folder(folder: Path, classes: Sequence[str], detector=None) -> LabelledFaces:
    """Every labelled image under ``folder`` (with a ``detector``: its largest face); unlabelled or unreadable
    files and photos without a face are listed as skipped."""
    from fer.core.images import ImageError, load_image

    if (folder / "train").is_dir() and (folder / "test").is_dir():
        raise ValueError(f"{folder} holds whole splits; pass one of them, e.g. {folder / 'test'}")
    files = images_under(folder)
    faces, labels, skipped = [], [], []
    for path in files:
        label = label_from_path(path, classes)
        if label is None:
            skipped.append(f"{path}: no class in its folder or file name")
            continue
        try:
            image = load_image(path, name=str(path))
        except ImageError as e:
            skipped.append(str(e))
            continue
        if detector is not None and (image := largest_face(image, detector)) is None:
            skipped.append(f"{path}: no face found")
            continue
        faces.append(image)
        labels.append(label)
    return LabelledFaces(faces, labels, str(folder), skipped)


def load_csv(path: Path, usage: str = "PrivateTest") -> LabelledFaces:
    """The ``usage`` rows of a FER-2013 CSV."""
    from fer.core.dataset import read_rows
    from fer.core.labels import FER2013_CLASSES

    rows = [r for r in read_rows(path) if r.usage == usage]
    return LabelledFaces([r.pixels for r in rows], [FER2013_CLASSES[r.label] for r in rows], f"{path} ({usage})", [])


def load_labelled(data: str | Path, classes: Sequence[str], detector=None) -> LabelledFaces:
    """Labelled faces from ``data``; with a ``detector``, the largest face of each image is cropped first."""
    data = Path(data)
    if data.is_dir():
        found = load_folder(data, classes, detector)
    elif data.is_file():
        found = load_csv(data)
    else:
        raise FileNotFoundError(f"{data}: no such folder or CSV")
    if not found.faces:
        raise ValueError(f"{data}: no labelled images found (expected <class>/*.png or class-prefixed names; "
                         f"classes: {', '.join(classes)})")
    return found


def plot_confusion(result: dict, path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    from fer.core.plotting import pyplot

    plt = pyplot()

    cm = np.array(result["confusion_matrix"])
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    classes = result["classes"]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{norm[i, j]:.0%}\n{cm[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def photo_like(faces: Sequence[np.ndarray]) -> int:
    """How many of the images are larger than face crops usually are."""
    return sum(min(f.shape[:2]) > CROP_LIKE_SIDE for f in faces)


def evaluate(predictor: Predictor, data: str | Path, tta: str | bool = False, detector=None) -> dict:
    """Classify every labelled face in ``data`` (batched, with the TTA mode ``tta``) and compute the metrics;
    with a ``detector`` the largest face of each image is found and cropped first, else each image is taken
    as a face crop."""
    tta = tta_mode(tta)
    found = load_labelled(data, predictor.classes, detector)
    start = time.perf_counter()
    probs = predictor.predict_proba(found.faces, tta=tta)
    seconds = time.perf_counter() - start
    predicted = [predictor.classes[i] for i in probs.argmax(axis=1)]
    result = metrics(found.labels, predicted, predictor.classes)
    result.update(data=found.source, tta=tta, seconds=round(seconds, 2), skipped=found.skipped,
                  faces_detected=detector is not None, photo_like=0 if detector else photo_like(found.faces))
    return result
