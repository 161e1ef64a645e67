"""A personal model from a user's corrections (:mod:`fer.serving.feedback`): the base model's backbone frozen,
its head trained on augmented views of the corrections, with replayed training faces distilled towards the base
and an L2 pull towards the base's weights; exported as ONNX with a card. The command is ``python -m
fer.personalize``; its help says how and why.
"""

from __future__ import annotations

import copy
import csv
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fer.core.card import (
    ModelLoadError,
    load_card,
    timestamp,
    write_card,
)
from fer.core.cli import progress
from fer.core.dataset import BadRowError, ferplus_majority, open_text, parse_label, parse_pixels
from fer.core.images import ImageError, images_under, load_image
from fer.core.labels import FER2013_CLASSES, USAGE_TO_SPLIT
from fer.core.quiet import known_warnings_silenced
from fer.evaluation.evaluate import largest_face
from fer.evaluation.metrics import metrics
from fer.evaluation.suite import run_suite, suite_faces
from fer.serving.detect import make_detector
from fer.serving.faces import to_face
from fer.serving.feedback import FeedbackError, correction_files, manifest_rows
from fer.serving.model_files import load_predictor
from fer.serving.recognize import PHOTO_DETECT_WIDTH
from fer.training.config import AUGMENT_PRESETS, PersonalizeConfig
from fer.training.export import export_onnx
from fer.training.predict import load_learner_file
from fer.training.preprocess import batch_tfms, inference_module, validation_pipeline
from fer.training.runtime import compile_for_inference

logger = logging.getLogger(__name__)

#: Images larger than this (shorter side, px) are photos: their largest face is cropped first.
PHOTO_SIDE = 160


# --------------------------------------------------------------------------- the corrections

@dataclass
class Corrections:
    """The corrections read from a feedback folder: 48×48 grey faces, their labels and files, and the files skipped."""
    faces: list[np.ndarray]  # 48×48 grey
    labels: list[str]
    files: list[str]
    skipped: list[str] = field(default_factory=list)
    manifest_rows: int = 0  # rows of the folder's manifest.csv (corrections saved by the app)

    def per_class(self, classes: Sequence[str]) -> dict[str, int]:
        """How many corrections each of ``classes`` has (classes with none left out)."""
        return {c: self.labels.count(c) for c in classes if c in self.labels}


def read_corrections(folder: str | Path, classes: Sequence[str], detector=None) -> Corrections:
    """Every image under ``folder/<class>/`` as a 48×48 grey face. FeedbackError for a missing or empty folder,
    a class folder the model does not know, or no usable image; unreadable images and photos without a
    face are skipped and listed. ``detector`` (made on first need) crops the largest face of photos."""

    folder = Path(folder)
    if not folder.is_dir():
        raise FeedbackError(f"--feedback {folder}: no such folder")
    by_class = correction_files(folder)
    unknown = [name for name in by_class if name not in classes]
    if unknown:
        raise FeedbackError(f"--feedback {folder}: {', '.join(f'{u}/' for u in unknown)} is not a class of the base "
                            f"model (class folders: {', '.join(classes)})")
    if not by_class:
        raise FeedbackError(f"--feedback {folder}: no corrections (expected {folder}/<class>/*.png, saved by "
                            f"`python app/main.py --feedback {folder}` or dropped in)")
    found = Corrections([], [], [], manifest_rows=manifest_rows(folder))  # a bad manifest stops us before training
    for label, files in by_class.items():
        for path in files:
            name = f"{label}/{path.name}"
            try:
                image = load_image(path, name=name)
            except ImageError as e:
                found.skipped.append(str(e))
                continue
            if min(image.shape[:2]) > PHOTO_SIDE:

                if detector is None:

                    detector = make_detector("yunet", PHOTO_DETECT_WIDTH)
                image = largest_face(image, detector)
                if image is None:
                    found.skipped.append(f"{name}: no face found in this photo")
                    continue
            found.faces.append(to_face(image))
            found.labels.append(label)
            found.files.append(name)
    if not found.faces:
        raise FeedbackError(f"--feedback {folder}: none of the {sum(map(len, by_class.values()))} images is usable "
                            f"(e.g. {found.skipped[0]})")
    return found


# --------------------------------------------------------------------------- FER-2013 faces

@dataclass
class FaceSet:
    """Faces with labels and their FER-2013 row (-1 for images from a folder)."""
    faces: np.ndarray  # (N, 48, 48) uint8
    labels: list[str]
    rows: list[int]  # CSV row index (row i of the FER+ file), -1 for images from a folder


def scan_csv(path: str | Path, replay: int, seed: int, test_usage: str | None = "PublicTest") -> tuple[FaceSet, FaceSet]:
    """``(replay, test)`` from a FER-2013 CSV in one pass: ``replay`` Training rows drawn at random (seeded
    reservoir sampling) and every ``test_usage`` row; only those rows' pixels are parsed."""

    rng = np.random.default_rng(seed)
    reservoir: list[tuple[int, str, str]] = []
    test: list[tuple[int, str, str]] = []
    seen = 0
    with open_text(path) as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if not {"emotion", "pixels", "Usage"} <= set(header):
            raise ValueError(f"{path}: not a FER-2013 CSV (header {header[:5]}; expected emotion,pixels,Usage)")
        col = {name: header.index(name) for name in ("emotion", "pixels", "Usage")}
        for index, fields in enumerate(progress(reader, desc="reading FER-2013", unit="row")):
            usage = fields[col["Usage"]].strip()
            item = (index, fields[col["emotion"]], fields[col["pixels"]])
            if usage == "Training" and replay:
                seen += 1
                if len(reservoir) < replay:
                    reservoir.append(item)
                elif (j := rng.integers(seen)) < replay:
                    reservoir[j] = item
            elif usage == test_usage:
                test.append(item)

    def face_set(items):
        items = sorted(items)
        try:
            faces = [parse_pixels(p) for _, _, p in items]
            labels = [FER2013_CLASSES[parse_label(e)] for _, e, _ in items]
        except ValueError as e:
            raise ValueError(str(BadRowError(path, 0, str(e))).replace(", line 0", "")) from None
        return FaceSet(np.stack(faces) if faces else np.zeros((0, 48, 48), np.uint8), labels, [i for i, _, _ in items])

    return face_set(reservoir), face_set(test)


def sample_folder(folder: str | Path, n: int, seed: int) -> FaceSet:
    """``n`` random images of ``folder/train/<class>/`` (a prepared FER-2013 folder)."""

    train = Path(folder) / USAGE_TO_SPLIT["Training"]
    if not train.is_dir():
        raise ValueError(f"--data {folder}: has no train/ folder (make it with data_scripts/prepare_fer2013.py)")
    files = images_under(train)
    if not files:
        raise ValueError(f"--data {folder}: no images under {train}")
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    chosen = [files[i] for i in sorted(pick)]
    faces = np.stack([to_face(load_image(f, name=str(f))) for f in chosen])
    return FaceSet(faces, [f.parent.name for f in chosen], [-1] * len(chosen))


def ferplus_labels(path: str | Path, rows: Sequence[int]) -> list[str | None]:
    """The FER+ majority label of each CSV row (None: unknown, not a face, or contempt, which the model lacks)."""

    majority = ferplus_majority(path)
    return [majority[r] if majority[r] in FER2013_CLASSES else None for r in rows]


# --------------------------------------------------------------------------- the model

class Backbone:
    """The base learner's frozen backbone up to the pooled features its head takes, compiled for the CPU
    (:mod:`fer.training.runtime`), with the learner's own preprocessing and its training augmentation."""

    def __init__(self, learn):
        import torch


        with known_warnings_silenced():
            from fastai.vision.all import IntToFloatTensor
            from fasttransform import Pipeline

        self.preprocess = inference_module(validation_pipeline(learn))
        if self.preprocess is None:
            raise ValueError("the base model's preprocessing is not resize + normalise: cannot personalise it")
        size = tuple(self.preprocess.size)
        augment = batch_tfms(size[0], self.preprocess.stats, AUGMENT_PRESETS["default"])
        self.augment = Pipeline([IntToFloatTensor(), *augment], split_idx=0)
        body, head = learn.model[0], learn.model[1]
        trunk = torch.nn.Sequential(body, head[0], head[1]).eval()  # pooling and flatten: the head's first steps
        self.fn, self.backend = compile_for_inference(trunk, (2, 1, *size))

    def features(self, faces: np.ndarray, views: int = 0, bs: int = 256, desc: str = "features") -> np.ndarray:
        """Pooled features of uint8 faces ``(N, 48, 48)``: of the faces as they are (``views=0``), or of
        ``views`` augmented views of each, ``(N * views, D)`` with the views of a face side by side."""
        import torch


        with known_warnings_silenced():
            from fastai.vision.all import TensorImageBW

        batch = torch.from_numpy(np.ascontiguousarray(faces))[:, None]
        if views:
            batch = batch.repeat_interleave(views, dim=0)
        out = []
        for i in progress(range(0, len(batch), bs), desc=desc, unit="batch"):
            chunk = batch[i:i + bs]
            with torch.no_grad():
                x = (self.augment(TensorImageBW(chunk)) if views else self.preprocess(chunk)).as_subclass(torch.Tensor)
                out.append(self.fn(x.contiguous()).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def trainable_head(learn):
    """A copy of the learner's head after its pooling (batch norm, dropout, linear layers)."""
    return copy.deepcopy(learn.model[1][2:])


def head_probs(head, features: np.ndarray, bs: int = 4096) -> np.ndarray:
    """The head's class probabilities of backbone ``features``, in batches of ``bs``."""
    import torch

    head.eval()
    with torch.no_grad():
        return np.concatenate([torch.softmax(head(torch.from_numpy(features[i:i + bs])), 1).numpy()
                               for i in range(0, len(features), bs)]) if len(features) else np.zeros((0, 0))


def train_keeping_statistics(head) -> None:
    """``head`` in training mode with its batch norm layers kept in eval mode: the base's statistics (a batch of
    one person's faces is not the population)."""
    import torch

    head.train()
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()


def train_head(head, corrections: np.ndarray, targets: np.ndarray, replay: np.ndarray | None,
               replay_probs: np.ndarray | None, config: PersonalizeConfig) -> list[float]:
    """Train ``head`` in place: cross-entropy (label smoothing 0.1) on the corrections' features, plus
    ``replay_weight`` × KL divergence from the base's probabilities on the replayed faces' features, plus
    ``anchor`` × the squared change of the weights. Batch norm keeps the base's statistics. Returns the
    loss per step."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    start = [p.detach().clone() for p in head.parameters()]
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=0.0)
    xc, yc = torch.from_numpy(corrections), torch.from_numpy(targets)
    xr = torch.from_numpy(replay) if replay is not None and len(replay) else None
    pr = torch.from_numpy(replay_probs) if xr is not None else None
    losses = []
    train_keeping_statistics(head)
    for _ in progress(range(config.steps), desc="training", unit="step"):
        idx = torch.from_numpy(rng.integers(len(xc), size=min(64, len(xc))))
        loss = F.cross_entropy(head(xc[idx]), yc[idx], label_smoothing=0.1)
        if xr is not None and config.replay_weight:
            r = torch.from_numpy(rng.integers(len(xr), size=min(128, len(xr))))
            log_q = F.log_softmax(head(xr[r]), 1)
            loss = loss + config.replay_weight * F.kl_div(log_q, pr[r], reduction="batchmean")
        if config.anchor:
            loss = loss + config.anchor * sum(((p - p0) ** 2).sum() for p, p0 in zip(head.parameters(), start))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    return losses


# --------------------------------------------------------------------------- end to end

def load_base(path: str | Path):
    """The base model as a fastai learner (``.pkl``; for an ``.onnx``, the ``.pkl`` beside it)."""

    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.with_suffix(".pkl").is_file():
            raise ModelLoadError(f"--base {path}: an ONNX file cannot be trained; pass the exported learner (.pkl) "
                                 f"it was made from")
        path = path.with_suffix(".pkl")
    return load_learner_file(path), path


def check_out(config: PersonalizeConfig, base: Path) -> None:
    """The personal model never replaces the base model or its card."""
    out = config.onnx_path.resolve()
    protected = {base.resolve().with_suffix(s) for s in (".pkl", ".onnx", ".json")}
    if out in protected or out.with_suffix(".json") in protected:
        raise ValueError(f"--out {config.out}: would overwrite the base model {base} or its card; choose another name")
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"--out {config.out}: {out.parent} is not a folder")


def accuracy_table(probs: np.ndarray, labels: Sequence[str | None], classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class recall on the faces that have a label (fer.evaluate.metrics)."""

    keep = [i for i, y in enumerate(labels) if y is not None]
    predicted = [classes[j] for j in probs[keep].argmax(1)]
    m = metrics([labels[i] for i in keep], predicted, classes)
    return {"n": m["n"], "accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
            "recall": {c: v["recall"] for c, v in m["per_class"].items()}}


@dataclass
class Result:
    """A personal model: its ONNX file, its card and the seconds it took."""
    onnx: Path
    card: dict
    seconds: float


@dataclass
class Prepared:
    """What training a head needs, computed once (:func:`prepare`): the base learner, the corrections and
    replayed faces with their backbone features, and the base's probabilities on the replayed faces."""

    learn: object
    base_path: Path
    classes: list[str]
    corrections: Corrections
    replay: FaceSet | None
    test: FaceSet | None
    backbone: Backbone
    base_head: object
    xc: np.ndarray  # features of the corrections' augmented views
    yc: np.ndarray  # their class indices
    xr: np.ndarray | None  # features of the replayed faces
    pr: np.ndarray | None  # the base's probabilities on them


def prepare(config: PersonalizeConfig, learn=None, backbone: Backbone | None = None) -> Prepared:
    """Check everything, read the corrections and the faces, and compute their features. ``learn`` and
    ``backbone`` (of the same base model) may be passed in to reuse them (benchmarks/personalize.py). Raises
    FeedbackError, ModelLoadError, ValueError or FileNotFoundError naming the problem, before anything is
    written."""
    import torch

    config.check()
    if learn is None:
        learn, base_path = load_base(config.base)
    else:
        base_path = Path(config.base).with_suffix(".pkl")
    check_out(config, base_path)
    classes = [str(c) for c in learn.dls.vocab]
    corrections = read_corrections(config.feedback, classes)
    for line in corrections.skipped:
        logger.info(f"skipped {line}")
    if config.data and not Path(config.data).exists():
        raise FileNotFoundError(f"--data {config.data}: no such file or folder")
    logger.info(f"{len(corrections.faces)} corrections ({', '.join(f'{c} {n}' for c, n in corrections.per_class(classes).items())}); "
                f"base {base_path.name}")
    torch.manual_seed(config.seed)
    random.seed(config.seed)  # fastai's augmentation draws whether to flip, rotate... from Python's random
    replay, test = load_faces(config)
    backbone = backbone or Backbone(learn)
    base_head = trainable_head(learn)
    xc = backbone.features(np.stack(corrections.faces), views=config.views, desc="corrections")
    yc = np.repeat([classes.index(y) for y in corrections.labels], config.views)
    xr = backbone.features(replay.faces, desc="replay") if replay is not None and len(replay.faces) else None
    pr = head_probs(base_head, xr).astype(np.float32) if xr is not None else None
    return Prepared(learn, base_path, classes, corrections, replay, test, backbone, base_head, xc, yc, xr, pr)


def fit(prepared: Prepared, config: PersonalizeConfig):
    """A new head trained on the prepared features with ``config``'s settings: ``(head, losses)``."""
    head = trainable_head(prepared.learn)
    losses = train_head(head, prepared.xc, prepared.yc, prepared.xr, prepared.pr, config)
    return head, losses


def personalize(config: PersonalizeConfig) -> Result:
    """Train a personal model from ``config.feedback`` and export it (``.onnx`` and its ``.json`` card).
    Raises FeedbackError, ModelLoadError, ValueError or FileNotFoundError naming the problem, before
    anything is written."""
    import torch


    start = time.perf_counter()
    prep = prepare(config)
    head, losses = fit(prep, config)
    learn = prep.learn
    learn.model[1] = torch.nn.Sequential(*learn.model[1][:2], *head)
    train_seconds = time.perf_counter() - start
    card = personal_card(config, prep.base_path, load_card(prep.base_path), prep.classes, prep.corrections, prep.replay,
                         losses, train_seconds)
    if prep.test is not None:
        card["evaluation"] = before_after(prep.backbone, prep.base_head, head, prep.test, prep.classes, config)
    out = export_onnx(learn, config.onnx_path, card)
    card = load_card(out)
    if config.suite:  # measured on the exported file: in the JSON card only, not in the ONNX metadata
        card["suite"] = suite_before_after(config, prep.base_path, out)
        write_card(out, card)
    seconds = time.perf_counter() - start
    return Result(out, card, seconds)


def load_faces(config: PersonalizeConfig) -> tuple[FaceSet | None, FaceSet | None]:
    """The replayed training faces (``--data``) and the test faces (``--eval``, or ``--data`` if a CSV)."""
    data = Path(config.data) if config.data else None
    test_csv = Path(config.eval) if config.eval else (data if data and data.is_file() else None)
    if test_csv is not None and not test_csv.is_file():
        raise FileNotFoundError(f"--eval {test_csv}: no such file")
    replay = test = None
    if data is not None and data.is_dir():
        replay = sample_folder(data, config.replay, config.seed)
    if test_csv is not None and test_csv == data:
        replay, test = scan_csv(data, config.replay, config.seed)
    else:
        if data is not None and data.is_file():
            replay, _ = scan_csv(data, config.replay, config.seed, test_usage=None)
        if test_csv is not None:
            _, test = scan_csv(test_csv, 0, config.seed)
    if (config.ferplus or config.suite) and test is None:
        raise ValueError("--ferplus and --suite: need the FER-2013 CSV (--eval, or --data as a CSV)")
    if config.suite and not config.ferplus:
        raise ValueError("--suite: needs --ferplus (the suite scores both label sets)")
    return replay, test


def before_after(backbone: Backbone, base_head, head, test: FaceSet, classes: list[str],
                 config: PersonalizeConfig) -> dict:
    """Accuracy of the base and the personal model on the test faces, with FER-2013's labels and (with
    ``--ferplus``) FER+'s majority labels."""
    features = backbone.features(test.faces, desc="test faces")
    probs = {"before": head_probs(base_head, features), "after": head_probs(head, features)}
    label_sets = {"fer2013": test.labels}
    if config.ferplus:
        label_sets["ferplus"] = ferplus_labels(config.ferplus, test.rows)
    return {name: {when: accuracy_table(p, labels, classes) for when, p in probs.items()}
            | {"faces": f"{Path(config.eval or config.data).name} PublicTest"}
            for name, labels in label_sets.items()}


def suite_before_after(config: PersonalizeConfig, base_path: Path, personal: Path) -> dict:
    """:mod:`fer.evaluation.suite` on PublicTest (plain faces and YuNet crops, FER-2013 and FER+ labels) for the base and
    the personal model; per cell accuracy, balanced accuracy and macro-F1, and the serving score."""

    faces = suite_faces(config.eval or config.data, config.ferplus, "PublicTest", cache=config.suite_cache)
    base_file = base_path.with_suffix(".onnx") if base_path.with_suffix(".onnx").is_file() else base_path
    out = {}
    for when, path in (("before", base_file), ("after", personal)):
        result = run_suite(load_predictor(path), faces)
        out[when] = {"serving_score": round(result["serving_score"], 4),
                     "cells": {name: {labels: {k: round(cell[labels][k], 4)
                                               for k in ("n", "accuracy", "balanced_accuracy", "macro_f1")}
                                      for labels in ("fer2013", "ferplus")} | {"detected": round(cell["detected"], 4)}
                               for name, cell in result["cells"].items()}}
    return out


def personal_card(config: PersonalizeConfig, base_path: Path, base_card: dict, classes: list[str],
                  corrections: Corrections, replay: FaceSet | None, losses: list[float], seconds: float) -> dict:
    """The personal model's card: the base's recipe fields, what it was personalised on, and how."""
    keep = ("arch", "input_size", "channels", "normalisation", "class_order", "pretrained")
    return {
        **{k: base_card[k] for k in keep if k in base_card}, "classes": classes,
        "personalized": {
            "base": base_path.name, "base_sha256": (base_card.get("onnx") or {}).get("sha256"),
            "base_valid_accuracy": base_card.get("valid_accuracy"),
            "feedback": str(Path(config.feedback).resolve()), "corrections": corrections.per_class(classes),
            "skipped": corrections.skipped,
            "manifest_rows": corrections.manifest_rows,
            "replay": {"data": str(config.data), "faces": len(replay.faces)} if replay is not None else None,
            "method": "frozen backbone; the head trained on augmented views of the corrections, distilled towards "
                      "the base on replayed faces, its weights pulled towards the base's",
            "settings": {k: v for k, v in asdict(config).items() if k not in ("feedback", "out", "command")},
            "final_loss": round(float(np.mean(losses[-20:])), 4), "seconds": round(seconds, 1),
        },
        "valid_accuracy": None, "exported": timestamp(), "command": config.command,
    }
