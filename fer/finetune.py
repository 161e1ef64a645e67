"""Fine-tune a timm backbone on a FER image folder and export the learner (the steps: :mod:`fer.training.train`).

    python -m fer.finetune --data data/fer2013 --arch tf_efficientnet_lite0 \\
        --weights ../shared/weights/tf_efficientnet_lite0.in1k.safetensors --size 80 --epochs 20 --lr 5e-3
"""

from __future__ import annotations

import argparse
import shlex
import sys

# only light imports up here: --help and argument errors answer without loading torch or fastai
from fer.core.cli import configure_logging
from fer.core.extras import exit_on_missing_extra
from fer.core.labels import CLASS_ORDERS
from fer.training.config import DEFAULT_DISTILL_WEIGHT, PRECISIONS, TrainingConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them), defaulting to :class:`fer.training.config.TrainingConfig`'s."""
    d = TrainingConfig(data="")  # the defaults
    p = argparse.ArgumentParser(prog="python -m fer.finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with train/ and valid/ (data_scripts/prepare_fer2013.py)")
    p.add_argument("--arch", default=d.arch, help="any timm architecture name")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="local pretrained weights file for the backbone (timm key names)")
    weights.add_argument("--no-pretrained", action="store_true", help="train from scratch")
    p.add_argument("--size", type=int, default=d.size, help="model input size (faces are 48 px, upsampled)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs with all layers unfrozen")
    p.add_argument("--freeze-epochs", type=int, default=d.freeze_epochs, help="epochs training only the new head first")
    p.add_argument("--bs", type=int, default=d.bs)
    p.add_argument("--lr", type=float, help="learning rate; without it the lr finder picks one")
    p.add_argument("--lr-mult", type=float, default=d.lr_mult,
                   help="the backbone trains at lr/2/lr_mult, the head at lr/2 (fastai fine_tune's lr_mult)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--mixup", type=float, default=d.mixup, help="MixUp alpha for the unfrozen phase (0: off)")
    p.add_argument("--init-from", help="start from an exported learner's weights (same arch and classes; "
                                       "a second stage, e.g. at a larger --size)")
    p.add_argument("--teacher", action="append", default=[],
                   help="distil from this exported learner (repeat for an ensemble): it sees each augmented "
                        "training batch too and its probabilities become soft labels; a teacher trained with "
                        "--fold K/N labels only fold K (cross-fitting)")
    p.add_argument("--teacher-view", default=d.teacher_view, choices=("augmented", "clean"),
                   help="augmented (default): the teachers see each augmented training batch; clean: they label "
                        "the un-augmented images once before training, with flip TTA (the first shipped model's "
                        "way, scripts/train_default.sh)")
    p.add_argument("--distill-weight", type=float,
                   help=f"with --teacher: weight of the soft-label loss, in (0, 1] (default {DEFAULT_DISTILL_WEIGHT}; the rest is the "
                        "hard-label loss)")
    p.add_argument("--ferplus", metavar="CSV",
                   help="FER+ vote file (ferplus_labels.csv, row-aligned with FER-2013): the loss mixes the FER-2013 "
                        "label with the crowd's vote distribution (images named by their FER-2013 row)")
    p.add_argument("--ferplus-weight", type=float, default=d.ferplus_weight,
                   help=f"with --ferplus: the vote distribution's share of the loss, in (0, 1] (default {d.ferplus_weight})")
    aug = p.add_argument_group("augmentation (on the GPU/CPU per batch, training only)")
    aug.add_argument("--augment", default=d.augment, metavar="PRESET",
                     help="default: flip, rotate 15°, zoom 1–1.15, warp, brightness/contrast (the first shipped "
                          "recipe); strong: also scale 0.85–1.2, shift 8%%, rotate 20°, gamma, blur, JPEG "
                          "artefacts, random erasing; none: resize only")
    aug.add_argument("--aug", action="append", default=[], metavar="KEY=VALUE",
                     help="override one setting of the preset (repeatable): flip=true|false, rotate=DEG, "
                          "scale=MIN,MAX, translate=FRACTION, warp, p_affine, lighting, gamma=MAX_LOG_GAMMA, "
                          "blur=P, jpeg=P, erasing=P (fer.training.preprocess.Augment)")
    aug.add_argument("--no-augment", action="store_true", help="same as --augment none")
    p.add_argument("--ema", type=float, default=d.ema,
                   help="validate, checkpoint and export an exponential moving average of the weights with this "
                        "decay per step (e.g. 0.999; 0: off)")
    p.add_argument("--class-weight", type=float, default=d.class_weight, metavar="POWER",
                   help="weigh each class's loss by (its training faces)^-POWER: 0.5 inverse square root, 1 inverse "
                        "frequency (default 0: off)")
    p.add_argument("--fold", metavar="K/N",
                   help="hold out fold K of N of the training faces (by FER-2013 row): a cross-fitted teacher, "
                        "which then labels only that fold when distilling")
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes (0: load in the "
                                                                 "main process, fastest on a 2-core CPU)")
    p.add_argument("--class-order", choices=CLASS_ORDERS,
                   help="order of the model's classes: FER-2013's label order (default) or alphabetical (as the "
                        "shipped model); a run with --init-from keeps its source's order")
    p.add_argument("--out", default=d.out, help="exported learner (.pkl); a .json card goes beside")
    p.add_argument("--run-dir", help="checkpoints, logs and plots (default: runs/<out name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="auto: bf16/fp16 mixed precision on a CUDA GPU, fp32 on the CPU")
    return p.parse_args(argv)


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.finetune`` (``fer-train``): check the options, train (or resume) and export; returns the
    exit status."""
    args = parse_args(argv)
    configure_logging()
    command = "python -m fer.finetune " + shlex.join(sys.argv[1:] if argv is None else argv)
    config = TrainingConfig(**vars(args), command=command)
    try:
        config.check()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from fer.training.export import ExportError  # torch and fastai load here, after the arguments are checked
    from fer.training.train import set_up, train

    try:
        learn, stats, cbs = set_up(config)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    try:
        train(config, learn, stats, cbs)
    except ExportError as e:
        print(f"error: {e} (the learner and its card are written)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
