"""Knowledge distillation from a teacher ensemble, cross-fitted and on the student's own augmented view.

Every training batch, after augmentation, goes through the teachers too (each resized and normalised its
own way), so teacher and student see the same view. A teacher trained with ``--fold K/N`` never saw the
training faces of fold K, and labels exactly those: with cross-fitted teachers each face's soft label comes
only from teachers that did not train on it. Teachers without a fold label every face. The student learns
from ``(1 - weight) × hard-label loss + weight × soft-label cross-entropy``; validation keeps the true
labels only.

``--teacher-view clean`` keeps the first shipped model's way (``scripts/train_default.sh``): the teachers
label every un-augmented training image once, with flip TTA, before training, and the labels are cached.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastprogress.fastprogress import progress_bar

from fer.core.fileio import atomic_path
from fer.core.images import load_image
from fer.core.quiet import known_warnings_silenced  # before fastai
from fer.training.predict import FacePredictor
from fer.training.preprocess import inference_module, validation_pipeline

with known_warnings_silenced():
    from fastai.callback.core import Callback

VALID_FOLD = -1  #: the fold id of a validation image: no teacher labels it


def row_of(path: str | Path) -> int | None:
    """The FER-2013 row number that starts an image's name (``123.png``, its detector crop ``123_det.png``)."""
    digits = re.match(r"\d+", Path(path).stem)
    return int(digits.group()) if digits else None


def fold_of(path: str | Path, n_folds: int) -> int:
    """The fold (0 … n_folds−1) of a face image, from the FER-2013 row number that starts its name (so
    ``123.png`` and its detector crop ``123_det.png`` share a fold), else from a checksum of the name."""
    row = row_of(path)
    key = row if row is not None else zlib.crc32(Path(path).stem.encode())
    return key % n_folds


class FoldId:
    """``get_y`` of the distillation block: a training image's fold, :data:`VALID_FOLD` for any other."""

    def __init__(self, n_folds: int, train_name: str = "train"):
        self.n_folds, self.train_name = n_folds, train_name

    def __call__(self, path: Path) -> torch.Tensor:
        is_train = Path(path).parent.parent.name == self.train_name
        return torch.tensor(fold_of(path, self.n_folds) if is_train else VALID_FOLD)


class Teacher:
    """One teacher: its model in eval mode, the input size and normalisation it expects, and its held-out
    fold (None: it labels every training image)."""

    def __init__(self, model: torch.nn.Module, size: tuple[int, int], mean: float, std: float,
                 fold: tuple[int, int] | None, name: str = "teacher"):
        self.model, self.size, self.mean, self.std = model.eval(), tuple(size), float(mean), float(std)
        self.fold, self.name = fold, name

    @classmethod
    def from_learner(cls, learn, fold: tuple[int, int] | None, name: str) -> Teacher:

        """A teacher from an exported learner: its model and its own input size and normalisation (``ValueError``
        when its preprocessing is not a plain resize and normalise)."""
        pre = inference_module(validation_pipeline(learn))
        if pre is None:
            raise ValueError(f"--teacher {name}: its preprocessing is not resize + normalise")
        return cls(learn.model, pre.size, *pre.stats, fold, name)

    def probs(self, x01: torch.Tensor) -> torch.Tensor:
        """Class probabilities for a batch of [0, 1] grey images (any size)."""
        x = F.interpolate(x01, size=self.size, mode="bilinear", align_corners=True) if x01.shape[-2:] != self.size else x01
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            logits = self.model((x - self.mean) / self.std)
        return F.softmax(logits.float(), dim=1)


def check_teachers(teachers: Sequence[Teacher]) -> int | None:
    """The number of folds the teachers were cross-fitted on (None: none has a fold). Every fold needs a
    teacher, and teachers with and without folds are not mixed: ValueError naming the problem."""
    folds = [t.fold for t in teachers]
    if all(f is None for f in folds):
        return None
    if any(f is None for f in folds):
        plain = [t.name for t in teachers if t.fold is None]
        raise ValueError(f"--teacher: {', '.join(plain)} trained on every fold; mix no such teacher with "
                         f"cross-fitted ones (each face would be labelled by a teacher that saw it)")
    sizes = {n for _, n in folds}
    if len(sizes) > 1:
        raise ValueError(f"--teacher: folds of different splits ({', '.join(f'{k}/{n}' for k, n in folds)})")
    n = sizes.pop()
    missing = sorted(set(range(n)) - {k for k, _ in folds})
    if missing:
        raise ValueError(f"--teacher: no teacher holds out fold(s) {', '.join(map(str, missing))} of {n}: "
                         f"those faces would have no soft label")
    return n


class CrossFitDistillation(Callback):
    """Replaces each training batch's fold ids with the teachers' soft labels on the same augmented batch:
    for each face, the mean probabilities of the teachers that held out its fold (all teachers when they
    have no folds). Validation batches get their one-hot label. ``stats`` undo the student's normalisation."""

    order = -10  # before MixedPrecision's autocast and the loss

    def __init__(self, teachers: Sequence[Teacher], stats: tuple[float, float], n_classes: int):
        self.teachers, self.stats, self.n_classes = list(teachers), stats, n_classes

    def before_fit(self):
        """Move the teachers to the training device."""
        for t in self.teachers:
            t.model.to(self.dls.device)
            if self.dls.device.type == "cuda":
                t.model.to(memory_format=torch.channels_last)

    def before_batch(self):
        """Replace each training batch's target by the label and the teachers' mean probabilities (in validation, the
        label alone)."""
        label, fold = self.learn.yb
        if not self.training:
            self.learn.yb = (label, F.one_hot(label, self.n_classes).float())
            return
        x01 = self.learn.xb[0] * self.stats[1] + self.stats[0]
        total = torch.zeros(len(label), self.n_classes, device=label.device)
        count = torch.zeros(len(label), 1, device=label.device)
        with torch.no_grad():
            for t in self.teachers:
                mine = torch.ones_like(fold, dtype=torch.bool) if t.fold is None else fold == t.fold[0]
                if mine.any():
                    total[mine] += t.probs(x01[mine].as_subclass(torch.Tensor))
                    count[mine] += 1
        soft = torch.where(count > 0, total / count.clamp(min=1), F.one_hot(label, self.n_classes).float())
        self.learn.yb = (label, soft)


# --------------------------------------------------------------------------- clean view, labelled once

def teacher_probs(teachers: Sequence, files: Sequence[Path], tta: bool = True, bs: int = 512) -> np.ndarray:
    """Mean class probabilities of ``teachers`` (:class:`fer.training.predict.FacePredictor`) for image ``files``."""
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
        """Probabilities from the logits (softmax)."""
        return F.softmax(x, dim=-1)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted class of the logits."""
        return x.argmax(dim=-1)


def accuracy(pred: torch.Tensor, label: torch.Tensor, *_) -> torch.Tensor:
    """fastai's accuracy on the hard label, ignoring the soft-label target."""
    return (pred.argmax(dim=-1) == label).float().mean()
