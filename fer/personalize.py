"""A personal model from a user's corrections (the app's ``--feedback DIR`` folder, :mod:`fer.serving.feedback`).

    python -m fer.personalize --feedback DIR --out DIR/mine [--base exports/fer2013_effnet_lite0.pkl] \\
        [--data ../shared/data/fer2013.csv.gz] [--ferplus ../shared/data/ferplus_labels.csv]

writes ``DIR/mine.onnx`` (:mod:`fer.export`: the app serves it with ``--model`` or its model menu) and its
card ``DIR/mine.json`` (the base model, the corrections per class, the settings, the time and, with
test data, accuracy before and after). The base model is only read.

How: the base model's backbone stays frozen; only its classification head (two small fully connected
layers) is trained, on the backbone's features of augmented views of the corrections (the base model's
own training augmentation), so a few hundred corrections train in seconds and the face features the
base learned from 28,709 faces stay as they were. What the head must not forget:

- with ``--data`` (a FER-2013 CSV or an image folder with ``train/``): replay ``--replay`` training faces,
  on which the new head is distilled towards the base model's own probabilities (no labels needed);
- always: the head's weights are pulled towards the base's (an L2 penalty on the change, ``--anchor``).

Corrections of only some classes are normal. Photos in the folder (over 160 px) are searched for their
largest face; images that cannot be read or hold no face are skipped with a line each; an unknown class
folder, an empty folder or nothing usable stops with a one-line message.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from fer.core.card import ModelLoadError
from fer.core.cli import configure_logging
from fer.serving.feedback import FeedbackError
from fer.training.config import ANCHOR_WITH_REPLAY, ANCHOR_WITHOUT_REPLAY, PersonalizeConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them), defaulting to :class:`fer.training.config.PersonalizeConfig`'s."""
    d = PersonalizeConfig(feedback="", out="")
    p = argparse.ArgumentParser(prog="python -m fer.personalize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feedback", required=True, help="the corrections: DIR/<class>/*.png (python app/main.py --feedback DIR)")
    p.add_argument("--out", required=True, help="the personal model to write: NAME → NAME.onnx and its card NAME.json "
                                                "(put it in the feedback folder and the app's model menu lists it)")
    p.add_argument("--base", default=d.base, help="the model to start from (an exported learner, .pkl; default: the "
                                                  "shipped model); it is only read")
    p.add_argument("--data", help="FER-2013 faces to replay so the model does not forget them: the CSV "
                                  "(fer2013.csv[.gz]) or a folder with train/ (data_scripts/prepare_fer2013.py)")
    p.add_argument("--replay", type=int, default=d.replay, help=f"how many training faces to replay (default {d.replay})")
    p.add_argument("--eval", help="FER-2013 CSV whose PublicTest faces measure the model before and after, for the "
                                  "card (default: --data when it is a CSV)")
    p.add_argument("--ferplus", help="FER+ votes (fer2013new.csv): also measure on PublicTest's FER+ majority labels")
    p.add_argument("--suite", action="store_true",
                   help="also run the evaluation suite (fer.evaluation.suite: plain faces and the app's YuNet crops, FER-2013 "
                        "and FER+ labels) on the base and the personal model for the card; needs --ferplus")
    p.add_argument("--suite-cache", metavar="DIR", help="keep the suite's faces here between runs")
    p.add_argument("--views", type=int, default=d.views, help=f"augmented views per correction (default {d.views})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument("--replay-weight", type=float, default=d.replay_weight,
                   help=f"weight of the distillation loss on the replayed faces (default {d.replay_weight})")
    p.add_argument("--anchor", type=float, help="weight of the pull towards the base's head weights (default "
                                                 f"{ANCHOR_WITH_REPLAY} with --data, {ANCHOR_WITHOUT_REPLAY} without)")
    p.add_argument("--seed", type=int, default=d.seed)
    return p.parse_args(argv)


def format_summary(result) -> str:
    """The lines printed at the end: the files written, the base and corrections, and the accuracy before and after
    on each test set."""
    info = result.card["personalized"]
    lines = [f"wrote {result.onnx} and {result.onnx.with_suffix('.json')} in {result.seconds:.0f} s "
             f"(base {info['base']}, {sum(info['corrections'].values())} corrections)"]
    for name, figures in result.card.get("evaluation", {}).items():
        before, after = figures["before"], figures["after"]
        lines.append(f"{figures['faces']}, {name} labels ({after['n']} faces): accuracy {before['accuracy']:.2%} → "
                     f"{after['accuracy']:.2%}, macro-F1 {before['macro_f1']:.3f} → {after['macro_f1']:.3f}")
    if "suite" in result.card:
        suite = result.card["suite"]
        lines.append(f"evaluation suite (fer.evaluation.suite, PublicTest): serving score {suite['before']['serving_score']:.2%} → "
                     f"{suite['after']['serving_score']:.2%}")
    lines.append(f"serve it: python app/main.py --model {result.onnx}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.personalize``: train a personal model from the corrections; returns the exit status."""
    args = parse_args(argv)
    configure_logging()
    command = "python -m fer.personalize " + shlex.join(sys.argv[1:] if argv is None else argv)
    config = PersonalizeConfig(**vars(args), command=command)
    from fer.training.export import ExportError  # torch and fastai load here, after the arguments are parsed
    from fer.training.personalize import personalize

    try:
        result = personalize(config)
    except (FeedbackError, ModelLoadError, ValueError, FileNotFoundError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
