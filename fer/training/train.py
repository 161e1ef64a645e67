"""Training a model end to end, the steps behind ``python -m fer.finetune``: check the inputs, build the
learner (ImageNet, ``--init-from`` or scratch weights; optional distillation), run the resumable schedule,
plot, write the card and export the best epoch.

Only light imports at module level: the command line parses its arguments before torch and fastai load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from fer.core.card import load_card, timestamp
from fer.core.dataset import ferplus_vote_shares
from fer.core.plotting import pyplot
from fer.training.config import TrainingConfig, parse_fold
from fer.training.distill import (
    CrossFitDistillation,
    SoftLabel,
    Teacher,
    check_teachers,
    labelling_seconds,
    load_or_make_soft_labels,
    row_of,
)
from fer.training.distributed import (
    apply_precision,
    is_main_process,
    ready_for_export,
    setup_process,
    shared_learning_rate,
    training_context,
    world_size,
)
from fer.training.export import export_onnx
from fer.training.learner import (
    HISTORY,
    build_learner,
    export_learner,
    face_dataloaders,
    fine_tune_resumable,
    folder_classes,
    init_from_export,
    package_versions,
    pretrained_cfg,
    read_state,
    require_splits,
    split_files,
)
from fer.training.predict import ModelLoadError, load_learner_file
from fer.training.preprocess import grey_stats, learner_stats

logger = logging.getLogger(__name__)


def save_lr_find(learn, path: Path) -> float:
    """Run fastai's lr finder, save its plot, return the suggested (valley) learning rate."""
    from fastai.callback.schedule import valley


    plt = pyplot()
    suggestion = learn.lr_find(suggest_funcs=(valley,), show_plot=True)
    plt.gcf().savefig(path, dpi=100)
    plt.close("all")
    return float(suggestion.valley)


def plot_history(history_csv: Path, path: Path) -> None:
    """Training curves (losses and valid accuracy per epoch) from the run's CSV log."""
    import pandas as pd


    plt = pyplot()
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


def clean_soft_labels(config: TrainingConfig, run_dir: Path, teachers: list, vocab: list[str] | None):
    """``--teacher-view clean``: the teachers' flip-TTA probabilities for the un-augmented training images,
    computed once before training and cached in the run folder (for ``--resume``)."""

    data = Path(config.data)
    files = split_files(data, "train")
    logger.info(f"teacher labels for {len(files)} training images from {', '.join(config.teacher)}")
    soft = load_or_make_soft_labels(run_dir / "teacher_probs.npz", dict(zip(config.teacher, teachers)), files, data)
    return SoftLabel(soft, data, vocab or list(teachers[0].dls.vocab))


def ferplus_soft_labels(config: TrainingConfig, vocab: list[str]):
    """``--ferplus``: each training image's FER+ vote distribution over ``vocab`` (its row from the number that
    starts its name, so a detector crop ``123_det.png`` gets the votes of ``123.png``); images whose row has
    no votes for these classes keep their one-hot FER-2013 label."""

    data = Path(config.data)
    shares = ferplus_vote_shares(config.ferplus, vocab)
    soft = {}
    for f in split_files(data, "train"):
        row = row_of(f)
        if row is not None and row < len(shares) and shares[row].sum() > 0:
            soft[str(f.relative_to(data))] = shares[row]
    if not soft:
        raise ValueError(f"--ferplus {config.ferplus}: no training image's name starts with a FER-2013 row number "
                         f"(data_scripts/prepare_fer2013.py names them <row>.png)")
    logger.info(f"FER+ votes for {len(soft)} training images, weight {config.ferplus_weight}")
    return SoftLabel(soft, data, vocab)


def teacher_folds(config: TrainingConfig, learners: list, vocab: list[str] | None) -> list:
    """The fold each ``--teacher`` held out, from its card (None: trained on every fold), after checking that
    its classes are the student's."""

    classes = vocab or list(learners[0].dls.vocab)
    for path, learn in zip(config.teacher, learners):
        if list(learn.dls.vocab) != classes:
            raise ValueError(f"--teacher {path}: classes {list(learn.dls.vocab)} differ from {classes}")
    return [parse_fold(load_card(path).get("fold")) for path in config.teacher]


def training_card(config: TrainingConfig, classes: list[str], stats: tuple[float, float]) -> dict:
    """The model card: how the model was trained, on what, and how well it did on PublicTest."""
    import pandas as pd


    run_dir = config.run_folder
    state = read_state(run_dir)
    train_seconds = float(pd.read_csv(run_dir / HISTORY).seconds.sum())
    source = Path(config.data) / "source.json"
    previous = load_card(config.init_from) if config.init_from else None
    pretrained = ("none" if config.no_pretrained else Path(config.weights).name if config.weights else "timm hub")
    card = {
        "arch": config.arch, "input_size": config.size, "channels": 1, "classes": classes,
        "class_order": previous.get("class_order", "from --init-from") if previous else config.class_order or "labels",
        "normalisation": {"mean": stats[0], "std": stats[1]},
        "pretrained": previous.get("pretrained", "unknown") if previous is not None else pretrained,
        "epochs": {"frozen": config.freeze_epochs, "unfrozen": config.epochs}, "batch_size": config.bs, "lr": config.lr,
        "lr_mult": config.lr_mult, "label_smoothing": config.label_smoothing, "mixup": config.mixup,
        "augment": augment.to_dict() if (augment := config.augmentation) else None,
        "augment_preset": "none" if augment is None else config.augment, "fold": config.fold,
        "class_weight": config.class_weight, "ema": config.ema or None,
        "init_from": Path(config.init_from).name if config.init_from else None,
        "teachers": [Path(t).name for t in config.teacher],
        "distill_weight": config.soft_label_weight if config.teacher else None,
        "ferplus_weight": config.ferplus_weight if config.ferplus else None,
        "teacher_view": config.teacher_view if config.teacher else None,
        "ferplus": Path(config.ferplus).name if config.ferplus else None,
        "valid_accuracy": state.get("best"), "best_epoch": state.get("best_epoch"),
        "training_seconds": round(train_seconds, 1),
        "data": json.loads(source.read_text()) if source.exists() else {"folder": str(config.data)},
        "versions": package_versions(), "exported": timestamp(),
        "command": config.command,
    }
    if config.teacher and config.teacher_view == "clean":
        card["teacher_label_seconds"] = round(labelling_seconds(run_dir / "teacher_probs.npz"), 1)
    if previous is not None:  # a later stage: keep the previous stage's card, count every stage's time
        card["previous_stage"] = previous
        card["training_seconds_total"] = round(
            train_seconds + card.get("teacher_label_seconds", 0)
            + previous.get("training_seconds_total", previous.get("training_seconds", 0)), 1)
    return card


def prepare(config: TrainingConfig, run_dir: Path):
    """Everything that can fail on bad input, before the run folder is made: ``(stats, source, teachers)``."""

    stats = grey_stats(pretrained_cfg(config.arch) if not config.no_pretrained else None)  # checks --arch first
    require_splits(Path(config.data), "train", "valid")
    if config.resume and not read_state(run_dir):
        raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}")
    # the loader the app uses: a missing, truncated or foreign file is a message naming the path
    source = load_learner_file(config.init_from) if config.init_from else None
    # weights from --init-from keep the normalisation they were trained with, whatever --no-pretrained says
    if source is not None:
        stats = learner_stats(source) or stats
    teachers = [load_learner_file(t) for t in config.teacher]  # clear errors before the long labelling pass
    return stats, source, teachers


def build(config: TrainingConfig, run_dir: Path, stats, source, teacher_learners):
    """The data loaders, the learner (its weights from ImageNet, --init-from or nothing) and the extra
    training callbacks (the teachers' distillation)."""

    vocab = list(source.dls.vocab) if source else None
    folds = teacher_folds(config, teacher_learners, vocab) if teacher_learners else []
    teachers, n_folds, clean = [], None, None
    if config.ferplus:
        clean = ferplus_soft_labels(config, vocab or folder_classes(Path(config.data) / "train",
                                                                    config.class_order or "labels"))
    elif folds and config.teacher_view == "clean":
        if any(folds):
            raise ValueError("--teacher-view clean: cross-fitted teachers (--fold) need --teacher-view augmented")
        clean = clean_soft_labels(config, run_dir, teacher_learners, vocab)
    elif folds:
        teachers = [Teacher.from_learner(learn, fold, path)
                    for path, learn, fold in zip(config.teacher, teacher_learners, folds)]
        n_folds = check_teachers(teachers)
    dls = face_dataloaders(config.data, config.size, stats, bs=config.bs, augment=config.augmentation, vocab=vocab,
                           class_order=config.class_order or "labels", hold_out=parse_fold(config.fold),
                           fold_ids=(n_folds or 1) if teachers else None, soft_labels=clean,
                           num_workers=config.workers)
    # a second stage gets its weights from --init-from: no ImageNet download or file needed
    from_imagenet = not (config.no_pretrained or config.init_from)
    learn = build_learner(dls, config.arch, pretrained=from_imagenet, weights=config.weights if from_imagenet else None,
                          label_smoothing=config.label_smoothing, path=run_dir,
                          distill_weight=config.soft_label_weight, class_weight=config.class_weight)
    if source and not config.resume:
        init_from_export(learn, source, f"--init-from {config.init_from}")
    cbs = [CrossFitDistillation(teachers, stats, len(dls.vocab))] if teachers else []
    if teachers:
        logger.info(f"distilling from {len(teachers)} teacher(s)"
                    + (f", cross-fitted on {n_folds} folds" if n_folds else ""))
    return learn, cbs


def set_up(config: TrainingConfig) -> tuple:
    """``(learn, stats, cbs)``, ready to train: the learner, the grey normalisation statistics and the extra
    training callbacks (for :func:`train`). Bad input (data,
    model files, architecture) raises a ValueError or FileNotFoundError naming it, before the run folder
    is made."""
    from fastai.torch_core import set_seed


    setup_process()  # several processes (torchrun): this one's GPU and data loading
    set_seed(config.seed)
    try:
        stats, source, teachers = prepare(config, config.run_folder)
        config.run_folder.mkdir(parents=True, exist_ok=True)
        learn, cbs = build(config, config.run_folder, stats, source, teachers)
        config.precision = apply_precision(learn, config.precision)
        return learn, stats, cbs
    except ModelLoadError as e:
        raise ValueError(str(e)) from None


def train(config: TrainingConfig, learn, stats: tuple[float, float], cbs: list | None = None) -> Path | None:
    """Fine-tune ``learn`` (resumably) and export its best epoch as ``.pkl`` and ``.onnx`` with a card; returns
    the exported ``.pkl`` (None in the other processes of a multi-process run: rank 0 writes every file)."""

    run_dir = config.run_folder
    logger.info(f"{config.arch}: {len(learn.dls.train_ds)} train / {len(learn.dls.valid_ds)} valid images, "
                f"classes {list(learn.dls.vocab)}")
    config_path = run_dir / "config.json"
    if config.resume and config_path.exists():
        config.lr = config.lr or json.loads(config_path.read_text()).get("lr")
    if config.lr is None:  # with several processes: found by rank 0 and shared
        config.lr = shared_learning_rate(lambda: save_lr_find(learn, run_dir / "lr_find.png"))
        if is_main_process():
            logger.info(f"lr finder suggests {config.lr:.2e} (plot: {run_dir / 'lr_find.png'})")
    if is_main_process():
        config_path.write_text(json.dumps(asdict(config), indent=2))
    processes = world_size()
    with training_context(learn):  # several processes under torchrun: fastai's distrib_ctx
        fine_tune_resumable(learn, config.epochs, config.lr, config.freeze_epochs, run_dir, resume=config.resume,
                            lr_mult=config.lr_mult, mixup=config.mixup, ema=config.ema, cbs=cbs)
    if not is_main_process():
        return None
    plot_history(run_dir / HISTORY, run_dir / "training_curves.png")
    classes = list(learn.dls.vocab)
    if config.soft_label_weight:  # export without the soft labels: the same plain data pipeline as any other model
        learn.dls = face_dataloaders(config.data, config.size, stats, bs=config.bs, augment=config.augmentation,
                                     vocab=classes)
        learn.loss_func = learn.loss_func.hard_loss
    card = {**training_card(config, classes, stats), "processes": processes, "precision": config.precision}
    ready_for_export(learn)
    path = export_learner(learn, config.out, card, run_dir)
    onnx_path = export_onnx(learn, path.with_suffix(".onnx"), card)  # torch-free serving (fer.serving.onnx_predict)
    logger.info(f"best valid accuracy {card['valid_accuracy']:.4f} ({card['best_epoch']}); training "
                f"{card['training_seconds'] / 60:.1f} min; exported {path}, {onnx_path.name} and "
                f"{path.with_suffix('.json')}")
    return path
