"""Fine-tune a timm backbone on a FER image folder and export the learner.

    python -m fer.finetune --data data/fer2013 --arch tf_efficientnet_lite0 \\
        --weights ../shared/weights/tf_efficientnet_lite0.in1k.safetensors --size 80 --epochs 25
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer.distill import SoftLabel, labelling_seconds, load_or_make_soft_labels
from fer.distributed import (PRECISIONS, apply_precision, is_main_process, ready_for_export, setup_process,
                             shared_learning_rate, training_context, world_size)
from fer.export import ExportError, export_onnx
from fer.learner import (
    HISTORY,
    build_learner,
    export_learner,
    face_dataloaders,
    fine_tune,
    init_from_export,
    load_card,
    package_versions,
    pretrained_cfg,
    read_state,
    require_splits,
    split_files,
    timestamp,
)
from fer.plotting import pyplot
from fer.predict import ModelLoadError, load_learner_file
from fer.preprocess import grey_stats

DEFAULT_DISTILL_WEIGHT = 0.7


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer.finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with train/ and valid/ (data_scripts/prepare_fer2013.py)")
    p.add_argument("--arch", default="tf_efficientnet_lite0", help="any timm architecture name")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="local pretrained weights file for the backbone (timm key names)")
    weights.add_argument("--no-pretrained", action="store_true", help="train from scratch")
    p.add_argument("--size", type=int, default=80, help="model input size (faces are 48 px, upsampled)")
    p.add_argument("--epochs", type=int, default=25, help="epochs with all layers unfrozen")
    p.add_argument("--freeze-epochs", type=int, default=1, help="epochs training only the new head first")
    p.add_argument("--bs", type=int, default=64)
    p.add_argument("--lr", type=float, help="learning rate; without it the lr finder picks one")
    p.add_argument("--lr-mult", type=float, default=5.0,
                   help="the backbone trains at lr/2/lr_mult, the head at lr/2 (fastai fine_tune's lr_mult)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--mixup", type=float, default=0.0, help="MixUp alpha for the unfrozen phase (0: off)")
    p.add_argument("--init-from", help="start from an exported learner's weights (same arch and classes; "
                                       "a second stage, e.g. at a larger --size)")
    p.add_argument("--teacher", action="append", default=[],
                   help="distil from this exported learner (repeat for an ensemble): its flip-TTA probabilities "
                        "on the training images become soft labels")
    p.add_argument("--distill-weight", type=float,
                   help="with --teacher: weight of the soft-label loss, in (0, 1] (default 0.7; the rest is the "
                        "hard-label loss)")
    p.add_argument("--no-augment", action="store_true", help="turn off flip/rotate/zoom/warp/lighting")
    p.add_argument("--out", default="exports/fer_model.pkl", help="exported learner (.pkl); a .json card goes beside")
    p.add_argument("--run-dir", help="checkpoints, logs and plots (default: runs/<out name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --run-dir")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: bf16/fp16 mixed precision on a CUDA GPU, fp32 on the CPU")
    return p.parse_args(argv)


def save_lr_find(learn, path: Path) -> float:
    """Run fastai's lr finder, save its plot, return the suggested (valley) learning rate."""
    plt = pyplot()
    from fastai.callback.schedule import valley

    suggestion = learn.lr_find(suggest_funcs=(valley,), show_plot=True)
    plt.gcf().savefig(path, dpi=100)
    plt.close("all")
    return float(suggestion.valley)


def plot_history(history_csv: Path, path: Path) -> None:
    """Training curves (losses and valid accuracy per epoch) from the run's CSV log."""
    plt = pyplot()
    import pandas as pd

    h = pd.read_csv(history_csv)
    x = range(1, len(h) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(x, h.train_loss, label="train loss")
    ax1.plot(x, h.valid_loss, label="valid loss")
    ax1.set_xlabel("epoch")
    ax1.legend()
    ax2.plot(x, h.accuracy, color="C2")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("valid accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def soft_labels(args: argparse.Namespace, run_dir: Path, vocab: list[str] | None) -> SoftLabel:
    """The teachers' soft labels for the training images (computed once, cached in the run folder)."""
    data = Path(args.data)
    require_splits(data, "train")
    teachers = [load_learner_file(t) for t in args.teacher]  # clear errors before the long labelling pass
    classes = vocab or list(teachers[0].dls.vocab)
    for path, t in zip(args.teacher, teachers):
        if list(t.dls.vocab) != classes:
            raise ValueError(f"--teacher {path}: classes {list(t.dls.vocab)} differ from {classes}")
    files = split_files(data, "train")
    print(f"teacher labels for {len(files)} training images from {', '.join(args.teacher)}")
    soft = load_or_make_soft_labels(run_dir / "teacher_probs.npz", dict(zip(args.teacher, teachers)), files, data)
    return SoftLabel(soft, data, classes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.distill_weight is not None and not args.teacher:
        print("error: --distill-weight needs at least one --teacher", file=sys.stderr)
        return 2
    args.distill_weight = DEFAULT_DISTILL_WEIGHT if args.distill_weight is None else args.distill_weight
    if args.teacher and not 0 < args.distill_weight <= 1:
        print(f"error: --distill-weight {args.distill_weight}: must be in (0, 1]", file=sys.stderr)
        return 2
    from fastai.torch_core import set_seed

    setup_process()
    processes = world_size()
    set_seed(args.seed)
    out = Path(args.out)
    run_dir = Path(args.run_dir or Path("runs") / out.stem)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    if args.resume and config_path.exists():
        saved = json.loads(config_path.read_text())
        args.lr = args.lr or saved.get("lr")
    try:
        cfg = pretrained_cfg(args.arch)
        stats = grey_stats(cfg if not args.no_pretrained else None)
        # the loader the app uses: a missing, truncated or foreign file is a message naming the path
        source = load_learner_file(args.init_from) if args.init_from else None
        vocab = list(source.dls.vocab) if source else None
        if args.teacher and args.mixup:
            raise ValueError("--teacher and --mixup cannot be combined (the soft labels are per image)")
        soft = soft_labels(args, run_dir, vocab) if args.teacher else None
        dls = face_dataloaders(args.data, args.size, stats, bs=args.bs, augment=not args.no_augment,
                               vocab=vocab, soft_labels=soft)
        # a second stage gets its weights from --init-from: no ImageNet download or file needed
        from_imagenet = not (args.no_pretrained or args.init_from)
        learn = build_learner(dls, args.arch, pretrained=from_imagenet, weights=args.weights if from_imagenet else None,
                              label_smoothing=args.label_smoothing, path=run_dir,
                              distill_weight=args.distill_weight if args.teacher else 0.0)
        if source and not args.resume:
            init_from_export(learn, source, f"--init-from {args.init_from}")
        precision = apply_precision(learn, args.precision)
    except (FileNotFoundError, ValueError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.arch}: {len(dls.train_ds)} train / {len(dls.valid_ds)} valid images, classes {list(dls.vocab)}")

    if args.lr is None:  # with several processes: found by rank 0 and shared
        args.lr = shared_learning_rate(lambda: save_lr_find(learn, run_dir / "lr_find.png"))
        if is_main_process():
            print(f"lr finder suggests {args.lr:.2e} (plot: {run_dir / 'lr_find.png'})")
    if is_main_process():
        config_path.write_text(json.dumps(vars(args), indent=2))
    try:
        with training_context(learn):  # several processes under torchrun: fastai's distrib_ctx
            fine_tune(learn, args.epochs, args.lr, args.freeze_epochs, run_dir, resume=args.resume,
                      lr_mult=args.lr_mult, mixup=args.mixup)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not is_main_process():  # rank 0 writes the plot, export and card
        return 0
    plot_history(run_dir / HISTORY, run_dir / "training_curves.png")
    if args.teacher:  # export without the soft labels: the same plain data pipeline as any other model
        learn.dls = face_dataloaders(args.data, args.size, stats, bs=args.bs, augment=not args.no_augment,
                                     vocab=list(dls.vocab))
        learn.loss_func = learn.loss_func.hard_loss

    state = read_state(run_dir)
    import pandas as pd
    train_seconds = float(pd.read_csv(run_dir / HISTORY).seconds.sum())
    source = Path(args.data) / "source.json"
    card = {
        "arch": args.arch, "input_size": args.size, "channels": 1, "classes": list(dls.vocab),
        "normalisation": {"mean": stats[0], "std": stats[1]},
        "pretrained": ("none" if args.no_pretrained else Path(args.weights).name if args.weights else "timm hub")
        if not args.init_from else load_card(args.init_from).get("pretrained", "unknown"),
        "epochs": {"frozen": args.freeze_epochs, "unfrozen": args.epochs}, "batch_size": args.bs, "lr": args.lr, "lr_mult": args.lr_mult,
        "label_smoothing": args.label_smoothing, "mixup": args.mixup, "augment": not args.no_augment,
        "init_from": Path(args.init_from).name if args.init_from else None,
        "teachers": [Path(t).name for t in args.teacher],
        "distill_weight": args.distill_weight if args.teacher else None,
        "valid_accuracy": state.get("best_accuracy"), "best_epoch": state.get("best_epoch"),
        "training_seconds": round(train_seconds, 1), "processes": processes, "precision": precision,
        "data": json.loads(source.read_text()) if source.exists() else {"folder": str(args.data)},
        "versions": package_versions(), "exported": timestamp(),
        "command": "python -m fer.finetune " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if args.teacher:
        card["teacher_label_seconds"] = round(labelling_seconds(run_dir / "teacher_probs.npz"), 1)
    if args.init_from:  # a later stage: keep the previous stage's card, count every stage's time
        card["previous_stage"] = load_card(args.init_from)
        card["training_seconds_total"] = round(
            train_seconds + card.get("teacher_label_seconds", 0)
            + card["previous_stage"].get("training_seconds_total", card["previous_stage"].get("training_seconds", 0)), 1)
    ready_for_export(learn)
    path = export_learner(learn, out, card)
    try:
        onnx_path = export_onnx(learn, path.with_suffix(".onnx"), card)  # torch-free serving (fer.onnx_predict)
    except ExportError as e:
        print(f"error: {e} (the learner {path} and its card are written)", file=sys.stderr)
        return 2
    print(f"best valid accuracy {card['valid_accuracy']:.4f} ({card['best_epoch']}); "
          f"training {train_seconds / 60:.1f} min; exported {path}, {onnx_path.name} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
