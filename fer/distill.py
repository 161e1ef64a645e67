"""Knowledge distillation: soft labels from teacher learners, and the loss that trains on them.

The teachers (one or more exported learners, averaged, with flip TTA) label every training image once
before training; the student then learns from ``(1 - weight) × hard-label loss + weight × soft-label
cross-entropy`` on its augmented views. Validation keeps the true labels only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastprogress.fastprogress import progress_bar

from fer.fileio import atomic_path
from fer.images import load_image


def teacher_probs(teachers: Sequence, files: Sequence[Path], tta: bool = True, bs: int = 512) -> np.ndarray:
    """Mean class probabilities of ``teachers`` (:class:`fer.predict.FacePredictor`) for image ``files``."""
    classes = teachers[0].classes
    for t in teachers[1:]:
        if t.classes != classes:
            raise ValueError(f"teachers disagree on the classes: {classes} vs {t.classes}")
    out = []
    for i in progress_bar(range(0, len(files), bs)):
        faces = [load_image(f, name=str(f)) for f in files[i:i + bs]]
        out.append(np.mean([t.predict_proba(faces, tta=tta) for t in teachers], axis=0))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(classes)), np.float32)


def load_or_make_soft_labels(cache: Path, teachers: dict[str, object], files: Sequence[Path],
                             root: Path) -> dict[str, np.ndarray]:
    """Soft labels from ``teachers`` (name → exported learner) keyed by image path relative to ``root``;
    computed once and cached in ``cache`` (.npz) for ``--resume``."""
    keys = [str(Path(f).relative_to(root)) for f in files]
    names = sorted(teachers)
    if cache.exists():
        with np.load(cache) as saved:
            if list(saved["keys"]) == keys and list(saved["teachers"]) == names:
                return dict(zip(keys, saved["probs"]))
    from fer.predict import FacePredictor

    start = time.perf_counter()
    probs = teacher_probs([FacePredictor(teachers[n]) for n in names], files)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no .npz to it
        np.savez(f, keys=np.array(keys), teachers=np.array(names), probs=probs,
                 seconds=np.float64(time.perf_counter() - start))
    return dict(zip(keys, probs))


def labelling_seconds(cache: Path) -> float:
    """How long the teachers took to label the training images (0 if unknown)."""
    if not Path(cache).exists():
        return 0.0
    with np.load(cache) as saved:
        return float(saved["seconds"]) if "seconds" in saved else 0.0


class SoftLabel:
    """``get_y`` for the soft-label block: the teacher's probabilities for a training image, or the one-hot
    true label for any other (validation) image."""

    def __init__(self, soft: dict[str, np.ndarray], root: Path, vocab: Sequence[str]):
        self.soft, self.root, self.vocab = soft, Path(root), list(vocab)

    def __call__(self, path: Path) -> torch.Tensor:
        probs = self.soft.get(str(Path(path).relative_to(self.root)))
        if probs is None:
            probs = np.eye(len(self.vocab), dtype=np.float32)[self.vocab.index(Path(path).parent.name)]
        return torch.from_numpy(np.asarray(probs, np.float32))


class DistillationLoss:
    """``(1 - weight) × hard_loss(pred, label) + weight × soft cross-entropy(pred, teacher probs)``."""

    def __init__(self, hard_loss, weight: float):
        self.hard_loss, self.weight = hard_loss, weight

    def __call__(self, pred: torch.Tensor, label: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        soft_ce = -(soft * F.log_softmax(pred.float(), dim=1)).sum(dim=1).mean()
        return (1 - self.weight) * self.hard_loss(pred, label) + self.weight * soft_ce

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=-1)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=-1)


def accuracy(pred: torch.Tensor, label: torch.Tensor, *_) -> torch.Tensor:
    """fastai's accuracy on the hard label, ignoring the soft-label target."""
    return (pred.argmax(dim=-1) == label).float().mean()

