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
import shlex
import sys
from pathlib import Path

from fer.core.cli import configure_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them); exits with a message on a bad combination."""
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


def valid_accuracy(learn, folder: Path) -> float:
    """The learner's accuracy on a class-per-folder split (``DATA/valid``)."""
    from fer.evaluation.evaluate import evaluate
    from fer.training.predict import FacePredictor

    return round(evaluate(FacePredictor(learn), folder)["accuracy"], 4)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.blend``: write the blended learner, its ONNX file and card; returns the exit status."""
    args = parse_args(argv)
    configure_logging()
    from fer.training.blend import blend  # torch and fastai load here, after the arguments are checked
    from fer.training.export import ExportError
    from fer.training.predict import ModelLoadError

    command = "python -m fer.blend " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        out, onnx = blend(args.tuned, args.out, args.base, args.alpha, args.prior_power, args.data, command)
    except (ModelLoadError, ValueError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}, {onnx.name} and {out.with_suffix('.json').name}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
