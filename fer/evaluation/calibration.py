"""Calibrated probabilities: temperature scaling, fitted on PublicTest and stored in the model file.

    python -m fer.evaluate --calibrate --model fer/models/fer2013_effnet_lite0/fer2013_effnet_lite0.onnx --write
    python -m fer.evaluate --calibrate --usage PrivateTest --json docs/results/calibration/private.json

One scalar ``T`` divides the model's logits before the softmax (Guo et al., 2017: "On calibration of modern
neural networks"). The logits are the exported model's, logit adjustment included (``fer.blend --prior-power``
lowers the last layer's bias): the temperature comes after it. ``T`` does not change which class is largest,
so no predicted label changes; it only makes the probabilities mean what they say.

``T`` is fitted on the plain faces of PublicTest (the split that selects; PrivateTest is only measured),
minimising the cross-entropy against one of :data:`FIT_LABELS`. Which one is measured, not assumed (``fit``
records all three): against the FER+ crowd the model's miscalibration is per class (its fear and disgust
calls are rarely the crowd's, its neutral and happy calls nearly always), which no temperature can undo,
and the temperature fitted to the crowd's majority sharpens the probabilities and raises the error against
every label set; fitted to FER-2013's labels it lowers it. The report scores every cell of the evaluation
suite (:mod:`fer.evaluation.suite`) of the split asked for, before (``T = 1``) and after.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from fer.evaluation.suite import ECE_BINS, LABEL_SETS, SuiteFaces, expected_calibration_error

#: What ``T`` can be fitted to: ``fer2013`` (the original single label; the default, see the module's notes),
#: ``ferplus`` (the crowd's 7-class majority, faces without one left out) or ``ferplus-votes`` (the share of
#: the ten votes each class got).
FIT_LABELS = ("fer2013", "ferplus", "ferplus-votes")
#: The split ``T`` is fitted on, always: the one that selects models.
FIT_USAGE = "PublicTest"
#: The range ``T`` is searched in.
TEMPERATURE_RANGE = (0.05, 20.0)
#: Bootstrap resamples behind each ECE's 90% interval (:func:`ece_interval`).
BOOTSTRAP_DRAWS = 500
#: The temperatures :func:`temperature_floor` tries (301 steps, even in log T).
FLOOR_TEMPERATURES = (0.5, 2.0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of ``(N, C)`` logits, shifted by each row's maximum."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def scaled_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` in float64."""
    return np.exp(log_softmax(np.asarray(logits, np.float64) / temperature))


def cross_entropy(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean cross-entropy of ``softmax(logits / temperature)`` against target distributions (rows sum to 1)."""
    return float(-(targets * log_softmax(np.asarray(logits, np.float64) / temperature)).sum(axis=1).mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises :func:`cross_entropy` (a bounded search over log T)."""
    from scipy.optimize import minimize_scalar

    if len(logits) == 0:
        raise ValueError("no faces to fit the temperature on")
    low, high = map(math.log, TEMPERATURE_RANGE)
    found = minimize_scalar(lambda log_t: cross_entropy(logits, targets, math.exp(log_t)), bounds=(low, high),
                            method="bounded", options={"xatol": 1e-6})
    temperature = math.exp(found.x)
    if not TEMPERATURE_RANGE[0] * 1.01 < temperature < TEMPERATURE_RANGE[1] / 1.01:
        raise ValueError(f"the fitted temperature {temperature:.3g} is at the edge of its range {TEMPERATURE_RANGE}: "
                         f"these logits cannot be calibrated by one scalar")
    return temperature


def one_hot(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Labels as rows of ``len(classes)``; a None label (or one not in ``classes``) is a row of zeros."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)))
    for row, label in enumerate(labels):
        if label in index:
            out[row, index[label]] = 1.0
    return out


def plain_targets(csv: str | Path, ferplus_csv: str | Path, classes: Sequence[str], usage: str = FIT_USAGE,
                  limit: int | None = None) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """The plain faces of ``usage`` and, for each of :data:`FIT_LABELS`, their target distributions over
    ``classes`` (a row of zeros where a face has none: no 7-class FER+ majority, no vote for any class)."""
    from fer.core.dataset import ferplus_majority, ferplus_vote_shares, read_rows
    from fer.core.labels import FER2013_CLASSES

    rows = [r for r in read_rows(Path(csv)) if r.usage == usage][:limit]
    if not rows:
        raise ValueError(f"{csv}: no {usage} rows")
    majority = ferplus_majority(ferplus_csv)
    if rows[-1].index >= len(majority):
        raise ValueError(f"{ferplus_csv}: {len(majority)} rows, fewer than {csv}; the files must be row-aligned")
    targets = {"fer2013": one_hot([FER2013_CLASSES[r.label] for r in rows], classes),
               "ferplus": one_hot([majority[r.index] for r in rows], classes),
               "ferplus-votes": ferplus_vote_shares(ferplus_csv, classes)[[r.index for r in rows]].astype(np.float64)}
    return [r.pixels for r in rows], targets


def target_ece(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """The expected calibration error against target distributions: a face counts as right by the share its
    target gives the predicted class (1 or 0 for a single label; the share of the votes for the crowd's)."""
    keep = targets.sum(axis=1) > 0
    probs = scaled_probabilities(logits[keep], temperature)
    return expected_calibration_error(probs, targets[keep][np.arange(keep.sum()), probs.argmax(axis=1)])


def reliability_bins(probs: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """The reliability diagram's bins (equal-width in confidence, the top probability, as
    :func:`fer.evaluation.suite.expected_calibration_error`): each non-empty bin's range, face count, mean
    confidence and accuracy."""
    confidence = probs.max(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return [{"low": round(float(edges[b]), 4), "high": round(float(edges[b + 1]), 4), "n": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean())}
            for b in range(bins) if (which == b).any()]


def cell_calibration(logits: np.ndarray, labels: Sequence[str | None], classes: Sequence[str],
                     temperature: float) -> dict:
    """One suite cell before (``T = 1``) and after ``temperature``: ECE, cross-entropy against the cell's labels,
    accuracy, how many predicted labels changed, and both reliability diagrams. Faces labelled None are left out."""
    keep = np.array([y is not None for y in labels], bool)
    logits = np.asarray(logits)[keep]
    truth = one_hot([y for y in labels if y is not None], classes)
    if len(logits) == 0:
        return {"n": 0}
    out: dict = {"n": int(len(logits))}
    predicted = {}
    for when, t in (("before", 1.0), ("after", temperature)):
        probs = scaled_probabilities(logits, t)
        predicted[when] = probs.argmax(axis=1)
        correct = truth[np.arange(len(truth)), predicted[when]] == 1
        out[when] = {"ece": expected_calibration_error(probs, correct), "nll": cross_entropy(logits, truth, t),
                     "accuracy": float(correct.mean()), "mean_confidence": float(probs.max(axis=1).mean()),
                     "reliability": reliability_bins(probs, correct)}
    out["labels_changed"] = int((predicted["before"] != predicted["after"]).sum())
    correct_after = truth[np.arange(len(truth)), predicted["after"]] == 1
    out["after"]["ece_interval_90"] = ece_interval(scaled_probabilities(logits, temperature), correct_after)
    out["floor"] = temperature_floor(logits, truth)
    return out


def ece_interval(probs: np.ndarray, correct: np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> list[float]:
    """The 5th and 95th percentiles of the ECE over bootstrap resamples of the faces: how far the figure would
    move on another sample of the same size."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(probs), (draws, len(probs)))
    eces = [expected_calibration_error(probs[i], correct[i]) for i in picks]
    return [round(float(v), 4) for v in np.percentile(eces, [5, 95])]


def temperature_floor(logits: np.ndarray, truth: np.ndarray) -> dict:
    """The lowest ECE any single temperature reaches on these very faces, and that temperature (a grid over
    :data:`FLOOR_TEMPERATURES`). Chosen on the faces it is scored on, so never applied: it bounds what temperature
    scaling can do for this model on this split."""
    def ece(t: float) -> float:
        probs = scaled_probabilities(logits, t)
        return expected_calibration_error(probs, truth[np.arange(len(truth)), probs.argmax(axis=1)] == 1)

    grid = np.exp(np.linspace(*np.log(FLOOR_TEMPERATURES), 301))
    eces = [ece(t) for t in grid]
    best = int(np.argmin(eces))
    return {"temperature": round(float(grid[best]), 4), "ece": round(float(eces[best]), 4)}


def calibration_report(predictor, faces: SuiteFaces, temperature: float) -> dict:
    """Every cell of the suite ``faces`` (sets × :data:`fer.evaluation.suite.LABEL_SETS`) before and after
    ``temperature`` (:func:`cell_calibration`), from the ONNX ``predictor``'s raw logits."""
    classes = list(predictor.classes)
    cells = {}
    for name, face_set in faces.sets.items():
        logits = predictor.logits(face_set.faces) if face_set.faces else np.zeros((0, len(classes)))
        cells[name] = {labels: cell_calibration(logits, getattr(face_set, labels), classes, temperature)
                       for labels in LABEL_SETS}
    return {"usage": faces.usage, "seed": faces.seed, "temperature": temperature, "classes": classes, "cells": cells}


def fit(predictor, csv: str | Path, ferplus_csv: str | Path, labels: str = FIT_LABELS[0],
        limit: int | None = None, command: str = "") -> dict:
    """Fit the temperature of the ONNX ``predictor`` on PublicTest's plain faces against ``labels`` (what the card
    records, :func:`write_calibration`), with ``alternatives``: the temperature each of :data:`FIT_LABELS` would
    give and the ECE it leaves on those faces against each of them (the choice of labels, measured)."""
    if labels not in FIT_LABELS:
        raise ValueError(f"labels {labels!r}: choose one of {', '.join(FIT_LABELS)}")
    faces, targets = plain_targets(csv, ferplus_csv, predictor.classes, FIT_USAGE, limit)
    logits = predictor.logits(faces)
    alternatives = {}
    for kind, target in targets.items():
        keep = target.sum(axis=1) > 0
        try:
            t = fit_temperature(logits[keep], target[keep])
        except ValueError as e:
            if kind == labels:
                raise
            alternatives[kind] = {"error": str(e)}
            continue
        alternatives[kind] = {"temperature": round(t, 4), "faces": int(keep.sum()),
                              "nll_before": round(cross_entropy(logits[keep], target[keep]), 4),
                              "nll_after": round(cross_entropy(logits[keep], target[keep], t), 4),
                              "ece_before": {k: round(target_ece(logits, v, 1.0), 4) for k, v in targets.items()},
                              "ece_after": {k: round(target_ece(logits, v, t), 4) for k, v in targets.items()}}
    chosen = alternatives[labels]
    return {"temperature": chosen["temperature"], "labels": labels,
            "fitted_on": f"{FIT_USAGE}, plain faces ({chosen['faces']})",
            "nll_before": chosen["nll_before"], "nll_after": chosen["nll_after"],
            "applied": "after the logit adjustment: probabilities = softmax(logits / temperature)",
            "command": command, "alternatives": alternatives}


def write_calibration(model: str | Path, calibration: dict) -> Path:
    """Store ``calibration`` (:func:`fit`'s result) in the ONNX file ``model``: its ``temperature`` in the
    metadata key :data:`fer.serving.onnx_predict.TEMPERATURE_KEY`, the whole entry in the card its metadata
    carries and in the card beside it (``calibration``; its ``onnx`` checksum updated). The graph and weights
    are left byte for byte as they are (checked before the file is replaced)."""
    import hashlib

    import onnx

    from fer.core.card import load_card, write_card
    from fer.core.fileio import write_bytes_atomic
    from fer.serving.onnx_predict import CARD_KEY, TEMPERATURE_KEY

    model = Path(model)
    if model.suffix.lower() != ".onnx":
        raise ValueError(f"{model}: the temperature is written into an ONNX model (.onnx)")
    proto = onnx.load(str(model))
    graph = proto.graph.SerializeToString()
    props = {p.key: p.value for p in proto.metadata_props}
    if CARD_KEY in props:
        props[CARD_KEY] = json.dumps({**json.loads(props[CARD_KEY]), "calibration": calibration})
    props[TEMPERATURE_KEY] = repr(float(calibration["temperature"]))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    data = proto.SerializeToString()
    if onnx.load_from_string(data).graph.SerializeToString() != graph:
        raise RuntimeError(f"{model}: rewriting the metadata changed the graph; nothing written")
    write_bytes_atomic(model, data)
    card = load_card(model)
    if card:
        card["calibration"] = calibration
        if "onnx" in card:
            card["onnx"] = {**card["onnx"], "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        write_card(model, card)
    return model


def plot_reliability(report: dict, path: str | Path, title: str) -> Path:
    """The reliability diagrams of the report's plain faces and upright crops against both label sets (accuracy
    against confidence per bin, before and after the temperature; the diagonal is perfect calibration)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s, labels) for s in ("plain", "crops upright") for labels in LABEL_SETS if s in report["cells"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.6), squeeze=False)
    for ax, (name, labels) in zip(axes[0], panels):
        cell = report["cells"][name][labels]
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for when, colour in (("before", "#d1495b"), ("after", "#00798c")):
            bins = [b for b in cell[when]["reliability"] if b["n"] >= 10]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color=colour, ms=3,
                    label=f"{'T = 1' if when == 'before' else 'T = %.2f' % report['temperature']}: "
                          f"ECE {cell[when]['ece']:.3f}")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", title=f"{name}, {labels} labels")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="upper left")
    axes[0, 0].set_ylabel("accuracy")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_report(report: dict) -> str:
    """A Markdown table: every cell's ECE (with its bootstrap interval and the floor any temperature reaches) and
    cross-entropy before and after, and the accuracy (unchanged)."""
    lines = [f"| {report['usage']}, T = {report['temperature']:.4f} | faces | accuracy | ECE T = 1 → T | "
             f"ECE 90% interval | best any T (chosen here) | cross-entropy T = 1 → T | labels changed |",
             "|---|---|---|---|---|---|---|---|"]
    for name, cell in report["cells"].items():
        for labels in LABEL_SETS:
            c = cell[labels]
            if not c["n"]:
                continue
            lines.append(f"| {name}, {labels} labels | {c['n']} | {100 * c['after']['accuracy']:.2f} | "
                         f"{c['before']['ece']:.3f} → **{c['after']['ece']:.3f}** | "
                         f"{c['after']['ece_interval_90'][0]:.3f}–{c['after']['ece_interval_90'][1]:.3f} | "
                         f"{c['floor']['ece']:.3f} at T = {c['floor']['temperature']:.2f} | "
                         f"{c['before']['nll']:.3f} → {c['after']['nll']:.3f} | {c['labels_changed']} |")
    return "\n".join(lines) + "\n"
