"""Blend a fine-tuned learner with the one it started from, and balance its classes after training.

    python -m fer.blend runs/tuned.pkl --base exports/fer2013_effnet_lite0.pkl --alpha 0.7 \\
        --prior-power 0.5 --data data/fer2013 --out runs/blend.pkl

- ``--alpha A`` (with ``--base``): the weights become ``(1 − A) × base + A × tuned`` (weight-space
  ensembling, "WiSE-FT"): a fine-tune that moved towards new data (detector crops, crowd labels) keeps more
  of what the base knew. Both must be the same architecture with the same classes in the same order,
  as ``python -m fer.finetune --init-from BASE`` makes them.
- ``--prior-power T`` (with ``--data``): the classifier's bias is lowered by ``T × log(class share in
  DATA/train)`` (logit adjustment): the rare classes (disgust, fear) are predicted more often, as a
  class-balanced loss would, without training.

Writes ``OUT`` (.pkl) and ``OUT.onnx`` with a card that records both settings and the tuned model's card.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from fer.cli import configure_logging

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer.blend", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tuned", help="the fine-tuned learner (.pkl)")
    p.add_argument("--base", help="the learner it was fine-tuned from (.pkl), for --alpha")
    p.add_argument("--alpha", type=float, default=1.0, help="the tuned weights' share, in [0, 1] (default 1: tuned only)")
    p.add_argument("--prior-power", type=float, default=0.0, help="logit adjustment strength T >= 0 (default 0: none)")
    p.add_argument("--data", help="training folder (DATA/train/<class>/) whose class shares --prior-power uses")
    p.add_argument("--out", required=True, help="the blended learner (.pkl); NAME.onnx and NAME.json go beside")
    args = p.parse_args(argv)
    if not 0 <= args.alpha <= 1:
        p.error(f"--alpha {args.alpha}: must be in [0, 1]")
    if args.alpha < 1 and not args.base:
        p.error("--alpha below 1 needs --base")
    if args.prior_power < 0:
        p.error(f"--prior-power {args.prior_power}: must be >= 0")
    if args.prior_power and not args.data:
        p.error("--prior-power needs --data (the training folder's class shares)")
    return args


def interpolate(tuned, base, alpha: float) -> None:
    """``tuned``'s weights ← ``(1 − alpha) × base + alpha × tuned`` (floating-point tensors; counters stay).

    A base that is itself ``--prior-power`` adjusted (e.g. the shipped model, which ``fer.finetune --init-from``
    tuned without its adjustment) is blended without it: its added bias is a post-hoc shift, not a weight."""
    import torch

    from fer.learner import logit_adjustment_key

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
    from fer.preprocess import inference_module, validation_pipeline

    mine, theirs = (inference_module(validation_pipeline(learn)) for learn in (tuned, base))
    described = [None if m is None else (tuple(m.size), *m.stats)
                 for m in (mine, theirs)]
    if None in described or described[0] != described[1]:
        raise ValueError(f"--base: its input preprocessing {described[1]} differs from the tuned learner's "
                         f"{described[0]} (size, mean, std); blend learners of one --init-from chain")


def class_shares(data: Path, classes: list[str]):
    """Each class's share of the images in ``data/train``, in ``classes`` order."""
    import torch

    from fer.images import images_under

    counts = torch.tensor([len(images_under(data / "train" / c)) if (data / "train" / c).is_dir() else 0
                           for c in classes], dtype=torch.float64)
    if (counts == 0).any():
        missing = [c for c, n in zip(classes, counts) if n == 0]
        raise ValueError(f"--data {data}: no training images of {', '.join(missing)} in {data / 'train'}")
    return counts / counts.sum()


def adjust_logits(learn, shares, power: float) -> None:
    """Lower the last linear layer's bias by ``power × log(shares)`` (logit adjustment)."""
    import torch

    from fer.learner import last_linear

    _, last = last_linear(learn.model)
    if last.bias is None:  # fastai's head ends in BatchNorm → Dropout → Linear without a bias
        last.bias = torch.nn.Parameter(torch.zeros(last.out_features, dtype=last.weight.dtype))
    with torch.no_grad():
        last.bias -= (power * torch.log(shares)).to(last.bias.dtype)


def valid_accuracy(learn, folder: Path) -> float:
    """The learner's accuracy on a class-per-folder split (``DATA/valid``)."""
    from fer.evaluate import evaluate
    from fer.predict import FacePredictor

    return round(evaluate(FacePredictor(learn), folder)["accuracy"], 4)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    from fer.card import load_card, timestamp
    from fer.export import ExportError, export_onnx
    from fer.learner import export_learner
    from fer.predict import ModelLoadError, load_learner_file

    try:
        learn = load_learner_file(args.tuned)
        classes = list(learn.dls.vocab)
        if args.alpha < 1:
            base = load_learner_file(args.base)
            if list(base.dls.vocab) != classes:
                raise ValueError(f"--base {args.base}: classes {list(base.dls.vocab)} differ from {classes}")
            check_same_preprocessing(learn, base)
            interpolate(learn, base, args.alpha)
        shares = None
        if args.prior_power:
            shares = class_shares(Path(args.data), classes)
            adjust_logits(learn, shares, args.prior_power)
        tuned_card = load_card(args.tuned)
        card = {**tuned_card, "blend": {
            "tuned": Path(args.tuned).name, "base": Path(args.base).name if args.alpha < 1 else None,
            "alpha": args.alpha, "prior_power": args.prior_power,
            "class_shares": dict(zip(classes, map(float, shares))) if shares is not None else None,
            "tuned_valid_accuracy": tuned_card.get("valid_accuracy"),
            "command": "python -m fer.blend " + shlex.join(sys.argv[1:] if argv is None else argv)},
            "exported": timestamp()}
        if args.data and (Path(args.data) / "valid").is_dir():  # the blend's own PublicTest accuracy
            card["valid_accuracy"] = valid_accuracy(learn, Path(args.data) / "valid")
            card["best_epoch"] = f"{card.get('best_epoch')} of the tuned run, then blended"
        card.pop("onnx", None)
        out = export_learner(learn, args.out, card)
        onnx = export_onnx(learn, out.with_suffix(".onnx"), card)
    except (ModelLoadError, ValueError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}, {onnx.name} and {out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
