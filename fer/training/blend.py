"""Weight-space blending of a fine-tuned learner with the one it started from (WiSE-FT) and logit adjustment by
the training set's class shares; the command is ``python -m fer.blend``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from fer.core.card import load_card, timestamp
from fer.core.images import images_under
from fer.evaluation.evaluate import evaluate
from fer.training.export import export_onnx
from fer.training.learner import export_learner, last_linear, logit_adjustment_key
from fer.training.predict import FacePredictor, load_learner_file
from fer.training.preprocess import inference_module, validation_pipeline

logger = logging.getLogger(__name__)


def interpolate(tuned, base, alpha: float) -> None:
    """``tuned``'s weights ← ``(1 − alpha) × base + alpha × tuned`` (floating-point tensors; counters stay).

    A base that is itself ``--prior-power`` adjusted (e.g. the shipped model, which ``fer.finetune --init-from``
    tuned without its adjustment) is blended without it: its added bias is a post-hoc shift, not a weight."""

    theirs = base.model.state_dict()
    mine = tuned.model.state_dict()
    adjusted = logit_adjustment_key(tuned.model, theirs)
    if adjusted:
        logger.info("--base: its logit adjustment (the last layer's bias) is left out of the blend")
        del theirs[adjusted]
    if list(theirs) != list(mine) or any(theirs[k].shape != mine[k].shape for k in mine):
        raise ValueError("--base: not the same architecture as the tuned learner")
    with torch.no_grad():
        for key, value in mine.items():
            if value.dtype.is_floating_point:
                value.copy_(torch.lerp(theirs[key].to(value.dtype), value, alpha))


def check_same_preprocessing(tuned, base) -> None:
    """Blended weights mean nothing if the two learners resize or normalise their input differently."""

    mine, theirs = (inference_module(validation_pipeline(learn)) for learn in (tuned, base))
    described = [None if m is None else (tuple(m.size), *m.stats)
                 for m in (mine, theirs)]
    if None in described or described[0] != described[1]:
        raise ValueError(f"--base: its input preprocessing {described[1]} differs from the tuned learner's "
                         f"{described[0]} (size, mean, std); blend learners of one --init-from chain")


def class_shares(data: Path, classes: list[str]):
    """Each class's share of the images in ``data/train``, in ``classes`` order."""

    counts = torch.tensor([len(images_under(data / "train" / c)) if (data / "train" / c).is_dir() else 0
                           for c in classes], dtype=torch.float64)
    if (counts == 0).any():
        missing = [c for c, n in zip(classes, counts) if n == 0]
        raise ValueError(f"--data {data}: no training images of {', '.join(missing)} in {data / 'train'}")
    return counts / counts.sum()


def adjust_logits(learn, shares, power: float) -> None:
    """Lower the last linear layer's bias by ``power × log(shares)`` (logit adjustment)."""

    _, last = last_linear(learn.model)
    if last.bias is None:  # fastai's head ends in BatchNorm → Dropout → Linear without a bias
        last.bias = torch.nn.Parameter(torch.zeros(last.out_features, dtype=last.weight.dtype))
    with torch.no_grad():
        last.bias -= (power * torch.log(shares)).to(last.bias.dtype)


def valid_accuracy(learn, folder: Path) -> float:
    """The learner's accuracy on a class-per-folder split (``DATA/valid``)."""
    return round(evaluate(FacePredictor(learn), folder)["accuracy"], 4)


def blend(tuned: str | Path, out: str | Path, base: str | Path | None = None, alpha: float = 1.0,
          prior_power: float = 0.0, data: str | Path | None = None, command: str = "") -> tuple[Path, Path]:
    """Blend ``tuned`` with ``base`` (``alpha``: the tuned weights' share) and adjust its logits by
    ``prior_power`` × log(class share in ``data``/train); writes ``out`` (.pkl) and its ``.onnx`` with a card
    and returns both paths. Raises ModelLoadError, ValueError or ExportError naming the problem."""
    learn = load_learner_file(tuned)
    classes = list(learn.dls.vocab)
    if alpha < 1:
        base_learn = load_learner_file(base)
        if list(base_learn.dls.vocab) != classes:
            raise ValueError(f"--base {base}: classes {list(base_learn.dls.vocab)} differ from {classes}")
        check_same_preprocessing(learn, base_learn)
        interpolate(learn, base_learn, alpha)
    shares = None
    if prior_power:
        shares = class_shares(Path(data), classes)
        adjust_logits(learn, shares, prior_power)
    tuned_card = load_card(tuned)
    card = {**tuned_card, "blend": {
        "tuned": Path(tuned).name, "base": Path(base).name if alpha < 1 else None,
        "alpha": alpha, "prior_power": prior_power,
        "class_shares": dict(zip(classes, map(float, shares))) if shares is not None else None,
        "tuned_valid_accuracy": tuned_card.get("valid_accuracy"),
        "command": command},
        "exported": timestamp()}
    if data and (Path(data) / "valid").is_dir():  # the blend's own PublicTest accuracy
        card["valid_accuracy"] = valid_accuracy(learn, Path(data) / "valid")
        card["best_epoch"] = f"{card.get('best_epoch')} of the tuned run, then blended"
    card.pop("onnx", None)
    card.pop("calibration", None)  # new weights: a temperature fitted to the tuned model's logits no longer holds
    pkl = export_learner(learn, out, card)
    return pkl, export_onnx(learn, pkl.with_suffix(".onnx"), card)
