"""fastai DataBlock + timm backbone: data loaders, learner, checkpoints and export."""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import torch

from fer.core.quiet import known_warnings_silenced  # before fastai

with known_warnings_silenced():  # importing fastai makes torch warn that jit.script is deprecated
    from fastai.learner import load_model, save_model
    from fastai.torch_core import rank_distrib
    from fastai.vision.all import (
        Callback,
        CategoryBlock,
        CrossEntropyLossFlat,
        DataBlock,
        DataLoaders,
        GrandparentSplitter,
        ImageBlock,
        L,
        LabelSmoothingCrossEntropyFlat,
        Learner,
        MixUp,
        PILImageBW,
        Recorder,
        TransformBlock,
        accuracy,
        get_image_files,
        parent_label,
        vision_learner,
    )

from fer.core.card import write_card
from fer.core.fileio import atomic_path, write_json_atomic
from fer.core.labels import CLASS_ORDERS, FERPLUS_CLASSES
from fer.training import distill, preprocess

logger = logging.getLogger(__name__)

CHECKPOINT_STATE = "checkpoint.json"
HISTORY = "history.csv"


# --------------------------------------------------------------------------- backbone

def timm_kwargs(weights: str | Path | None) -> dict:
    """Extra ``timm.create_model`` arguments: a local pretrained file through ``pretrained_cfg_overlay``."""
    if weights is None:
        return {}
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights}: no such file")
    return {"pretrained_cfg_overlay": {"file": str(weights.resolve())}}


def pretrained_cfg(arch: str) -> dict:
    """timm's pretrained config (mean/std, input size) for an architecture name, without weights."""
    import timm

    if not timm.is_model(arch):
        raise ValueError(f"unknown timm architecture {arch!r} (see timm.list_models())")
    cfg = timm.models.get_pretrained_cfg(arch)
    return dict(cfg.to_dict()) if cfg else {}


# --------------------------------------------------------------------------- data

def split_files(path: Path, *splits: str) -> list[Path]:
    """Images under the named split folders of ``path`` (e.g. ``train``)."""
    return get_image_files(path, folders=list(splits))


def train_valid_files(path: Path, hold_out: tuple[int, int] | None = None) -> list[Path]:
    """Images under ``path/train`` and ``path/valid`` only (test stays untouched); ``hold_out=(K, N)`` leaves
    out the training images of fold K of N (:func:`fer.training.distill.fold_of`)."""
    files = split_files(path, "train", "valid")
    if hold_out is None:
        return files
    k, n = hold_out
    return [f for f in files if f.parent.parent.name != "train" or distill.fold_of(f, n) != k]


def require_splits(data_dir: Path, *splits: str) -> None:
    """A clear error naming the first missing split folder (made by data_scripts/prepare_fer2013.py)."""
    for split in splits:
        if not (Path(data_dir) / split).is_dir():
            raise FileNotFoundError(f"{Path(data_dir) / split}: missing; make it with data_scripts/prepare_fer2013.py")


def folder_classes(folder: Path, order: str = "labels") -> list[str]:
    """Class folders in label order (fer.core.labels), then any others alphabetically; or all alphabetically
    (``order="alphabetical"``, fastai's default, which the shipped model was trained with)."""
    if order not in CLASS_ORDERS:
        raise ValueError(f"class order {order!r}: choose one of {', '.join(CLASS_ORDERS)}")
    present = {p.name for p in Path(folder).iterdir() if p.is_dir()}
    if order == "alphabetical":
        return sorted(present)
    return [c for c in FERPLUS_CLASSES if c in present] + sorted(present - set(FERPLUS_CLASSES))


def face_dataloaders(data_dir: str | Path, size: int, stats: tuple[float, float], bs: int = 64,
                     augment: preprocess.Augment | bool = True, num_workers: int = 0, vocab: list[str] | None = None,
                     class_order: str = "labels", hold_out: tuple[int, int] | None = None,
                     fold_ids: int | None = None, soft_labels: distill.SoftLabel | None = None) -> DataLoaders:
    """fastai DataLoaders over ``data_dir/{train,valid}/<class>/*.png``, grey faces; classes in
    ``class_order`` (:func:`folder_classes`) unless ``vocab`` gives them (a second stage keeps its first
    stage's order). ``hold_out=(K, N)`` trains without fold K of N. ``fold_ids=N`` adds a second target,
    each image's fold of N (:class:`fer.training.distill.FoldId`), for cross-fitted distillation; ``soft_labels`` (a
    :class:`fer.training.distill.SoftLabel`) adds the precomputed teacher probabilities instead (``--teacher-view clean``)."""
    data_dir = Path(data_dir)
    require_splits(data_dir, "train", "valid")
    label_block = CategoryBlock(vocab=vocab or folder_classes(data_dir / "train", class_order), sort=False)
    second = distill.FoldId(fold_ids) if fold_ids else soft_labels
    extra = (TransformBlock(),) if second else ()
    block = DataBlock(
        blocks=(ImageBlock(cls=PILImageBW), label_block, *extra),
        n_inp=1,
        get_items=partial(train_valid_files, hold_out=hold_out),
        splitter=GrandparentSplitter(train_name="train", valid_name="valid"),
        get_y=[parent_label, second] if second else parent_label,
        item_tfms=preprocess.item_tfms(),
        batch_tfms=preprocess.batch_tfms(size, stats, augment),
    )
    return block.dataloaders(data_dir, bs=bs, num_workers=num_workers)


def class_weights(dls: DataLoaders, power: float) -> torch.Tensor:
    """Loss weights ∝ (training faces of the class)^−``power`` (0.5: inverse square root), scaled so that the
    average training face weighs 1."""
    names = [Path(f).parent.name for f in dls.train_ds.items]
    counts = torch.tensor([max(names.count(c), 1) for c in dls.vocab], dtype=torch.float32)
    weights = counts ** -power
    return weights * counts.sum() / (weights * counts).sum()


# --------------------------------------------------------------------------- learner

def build_learner(dls: DataLoaders, arch: str, pretrained: bool = True, weights: str | Path | None = None,
                  label_smoothing: float = 0.1, path: str | Path = ".", distill_weight: float = 0.0,
                  class_weight: float = 0.0) -> Learner:
    """``vision_learner`` on a timm architecture with a one-channel (grey) stem.

    Normalisation is already in ``dls`` (from :mod:`fer.training.preprocess`), so fastai's own is off.
    ``distill_weight`` > 0 (with fold-id ``dls``) mixes in the teachers' soft labels (:mod:`fer.training.distill`).
    ``class_weight`` > 0 weighs the hard-label loss by :func:`class_weights` (rare classes count more).
    """
    weight = class_weights(dls, class_weight).to(dls.device) if class_weight else None
    loss = (LabelSmoothingCrossEntropyFlat(weight=weight, eps=label_smoothing) if label_smoothing
            else CrossEntropyLossFlat(weight=weight))
    metric = accuracy
    if distill_weight:
        loss, metric = distill.DistillationLoss(loss, distill_weight), distill.accuracy
    learn = vision_learner(dls, arch, n_in=1, pretrained=pretrained or weights is not None, normalize=False,
                           loss_func=loss, metrics=metric, path=path, **timm_kwargs(weights))
    # channels-last convolutions train about 2x faster on CPU here (benchmarks/train_throughput.py);
    # fastai's ChannelsLast callback converts the model when fitting starts
    learn.to_channelslast(use_amp=False)
    return learn


class WeightAverage(Callback):
    """An exponential moving average of the weights (``decay`` per step, warmed up as in timm's ModelEma),
    validated and checkpointed in place of the live weights: the average goes into the model before each
    validation (so ``best.pth`` and the export hold it) and the live weights come back before training
    resumes. A ``--resume``d run continues from the saved average."""

    order = Recorder.order - 1  # before TrainingCheckpoints saves the epoch

    def __init__(self, decay: float = 0.999):
        self.decay, self.live = decay, None

    def before_fit(self):
        """Start the average from the model's weights."""
        self.shadow = [v.detach().clone() for v in self.learn.model.state_dict().values()]
        self.steps = 0

    def after_step(self):
        """Move the average towards the new weights (the decay warms up over the first steps)."""
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            for avg, v in zip(self.shadow, self.learn.model.state_dict().values()):
                if v.dtype.is_floating_point:
                    avg.lerp_(v.detach(), 1 - decay)
                else:
                    avg.copy_(v)

    def before_validate(self):
        """Validate the averaged weights (the live ones are kept aside)."""
        state = self.learn.model.state_dict()
        self.live = [v.detach().clone() for v in state.values()]
        self._load(self.shadow)

    def before_train(self):
        """Train the live weights again."""
        if self.live is not None:
            self._load(self.live)
            self.live = None

    def _load(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for v, new in zip(self.learn.model.state_dict().values(), values):
                v.copy_(new)


class TrainingCheckpoints(Callback):
    """After every epoch: append a row to ``history.csv``, save ``last`` (model + optimiser) and, if the
    ``monitor`` metric improved, ``best``; all atomically, with a JSON state so ``--resume`` knows where to
    continue. The best weights are loaded back by :func:`load_best_weights` (the export does it)."""

    order = Recorder.order + 1  # the Recorder has logged the epoch's metrics

    def __init__(self, ckpt_dir: Path, phase: str, start_epoch: int = 0, best: float | None = None,
                 monitor: str = "accuracy"):
        self.ckpt_dir, self.phase, self.start_epoch = Path(ckpt_dir), phase, start_epoch
        self.best, self.monitor = best, monitor

    def before_epoch(self):
        """Note when the epoch started."""
        self.epoch_start = time.perf_counter()

    def after_epoch(self):
        """Append the epoch to the history and save ``last.pth`` (and ``best.pth`` when the monitored metric
        improved); only rank 0 writes."""
        if self.epoch < self.start_epoch or rank_distrib():  # skipped while resuming; only rank 0 writes
            return
        row = dict(zip(self.recorder.metric_names[1:-1], map(float, self.recorder.values[-1])))
        if self.monitor not in row:
            raise KeyError(f"TrainingCheckpoints: monitor {self.monitor!r} is not one of the recorded "
                           f"{', '.join(row)}")
        self._save("last")
        state = read_state(self.ckpt_dir)
        if self._improved(row[self.monitor]):
            self.best = row[self.monitor]
            self._save("best")
            state["best_epoch"] = f"{self.phase} {self.epoch + 1}"
        state.update(phase=self.phase, epochs_done=self.epoch + 1, monitor=self.monitor, best=self.best)
        write_json_atomic(self.ckpt_dir / CHECKPOINT_STATE, state)
        self._append_history(row)  # last: a row in the log means the epoch is checkpointed

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if "loss" in self.monitor else value > self.best

    def _append_history(self, row: dict[str, float]) -> None:
        path = self.ckpt_dir / HISTORY
        new = not path.exists()
        with open(path, "a") as f:
            if new:
                f.write(",".join(["phase", "epoch", *row, "seconds"]) + "\n")
            values = [f"{v:.5f}" for v in row.values()]
            f.write(",".join([self.phase, str(self.epoch + 1), *values,
                              f"{time.perf_counter() - self.epoch_start:.1f}"]) + "\n")

    def _save(self, name: str) -> None:
        with atomic_path(self.ckpt_dir / f"{name}.pth") as tmp:
            save_model(tmp, self.learn.model, self.learn.opt, with_opt=True)


def load_best_weights(learn: Learner, ckpt_dir: str | Path) -> bool:
    """Load the run's ``best.pth`` into ``learn.model``; False when the run saved none."""
    best = Path(ckpt_dir) / "best.pth"
    if not best.exists():
        return False
    load_model(best, learn.model, None, with_opt=False, device=learn.dls.device)
    return True


def read_state(ckpt_dir: Path) -> dict:
    """The run's checkpoint state (``{}`` before its first epoch); ``best`` is the best monitored value."""
    path = Path(ckpt_dir) / CHECKPOINT_STATE
    state = json.loads(path.read_text()) if path.exists() else {}
    if "best_accuracy" in state:  # written before the monitored metric was configurable
        state.setdefault("best", state.pop("best_accuracy"))
    return state


PHASES = ("frozen", "unfrozen")


def last_linear(model: torch.nn.Module) -> tuple[str, torch.nn.Linear]:
    """The classifier's last linear layer and its name in ``model``'s state dict."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]


def logit_adjustment_key(model: torch.nn.Module, state: dict) -> str | None:
    """The key of the last linear layer's bias in ``state`` when ``model`` has none there (fastai's head ends in
    a bias-free Linear; ``fer.blend --prior-power`` adds one), else None."""
    name, last = last_linear(model)
    key = f"{name}.bias"
    return key if last.bias is None and key in state else None


def init_from_export(learn: Learner, source: Learner, name: str = "--init-from") -> None:
    """Copy an exported learner's weights into ``learn`` (same architecture and class order; the input size
    may differ, e.g. for progressive resizing)."""
    if list(source.dls.vocab) != list(learn.dls.vocab):
        raise ValueError(f"{name}: classes {list(source.dls.vocab)} differ from {list(learn.dls.vocab)}")
    state = source.model.state_dict()
    adjusted = logit_adjustment_key(learn.model, state)
    if adjusted:  # a ``fer.blend --prior-power`` learner: its added bias is a post-hoc adjustment, not a weight
        logger.info(f"{name}: its logit adjustment (the last layer's bias) is left out; training re-learns the "
                    "class balance (apply it again with fer.blend)")
        del state[adjusted]
    try:
        learn.model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{name}: not the same architecture ({str(e).splitlines()[0]})") from None


def fine_tune_resumable(learn: Learner, epochs: int, lr: float, freeze_epochs: int, ckpt_dir: str | Path,
                        resume: bool = False, lr_mult: float = 5.0, mixup: float = 0.0,
                        monitor: str = "accuracy", ema: float = 0.0, cbs: list | None = None) -> None:
    """fastai's ``fine_tune`` schedule (one-cycle on the frozen head, then all layers at lr/2 with the
    backbone at lr/2/lr_mult), checkpointed every epoch so ``resume`` continues a killed run.

    fastai's default ``lr_mult=100`` leaves an ImageNet backbone nearly frozen (~3e-5); grey 48-px faces
    are far from ImageNet, and a first run with it reached only 45% valid after 3 epochs.
    ``mixup`` > 0 adds fastai's ``MixUp(alpha)`` callback and ``ema`` > 0 a :class:`WeightAverage` to the
    unfrozen phase; ``cbs`` go to both phases. ``monitor`` (a metric or loss name) picks the best epoch.
    The model ends with the last epoch's weights (:func:`load_best_weights`)."""
    ckpt_dir = Path(ckpt_dir)
    state = read_state(ckpt_dir) if resume else {}
    if resume and not state:
        raise FileNotFoundError(f"--resume: no checkpoint in {ckpt_dir}")
    if not resume:
        for name in (HISTORY, CHECKPOINT_STATE, "last.pth", "best.pth"):
            (ckpt_dir / name).unlink(missing_ok=True)
    if state:
        load_model(ckpt_dir / "last.pth", learn.model, None, with_opt=False, device=learn.dls.device)
    best = state.get("best")
    schedule = {"frozen": (freeze_epochs, slice(lr), dict(pct_start=0.99)),
                "unfrozen": (epochs, slice(lr / 2 / lr_mult, lr / 2), dict(pct_start=0.3, div=5.0))}
    for phase, (n_epochs, lrs, kwargs) in schedule.items():
        if state and PHASES.index(phase) < PHASES.index(state["phase"]):
            continue
        start = state.get("epochs_done", 0) if state.get("phase") == phase else 0
        if n_epochs == 0 or start >= n_epochs:
            continue
        learn.freeze() if phase == "frozen" else learn.unfreeze()
        if start:
            load_model(ckpt_dir / "last.pth", learn.model, learn.opt, with_opt=True, device=learn.dls.device)
            logger.info(f"resuming the {phase} phase at epoch {start + 1}/{n_epochs} (best {monitor} so far {best:.4f})")
        cb = TrainingCheckpoints(ckpt_dir, phase, start, best, monitor)
        phase_cbs = [cb, *(cbs or [])]
        if phase == "unfrozen":
            phase_cbs += [MixUp(mixup)] if mixup else []
            phase_cbs += [WeightAverage(ema)] if ema else []
        learn.fit_one_cycle(n_epochs, lrs, start_epoch=start, cbs=phase_cbs, **kwargs)
        best = cb.best


# --------------------------------------------------------------------------- export

def package_versions() -> dict[str, str]:
    """The versions of Python, torch, fastai and timm, for the model card."""
    import fastai
    import timm

    return {"python": platform.python_version(), "torch": torch.__version__, "fastai": fastai.__version__,
            "timm": timm.__version__}


def export_learner(learn: Learner, out: str | Path, card: dict, ckpt_dir: str | Path | None = None) -> Path:
    """Export the learner ``.pkl`` atomically and write its model card beside it. With ``ckpt_dir`` the run's
    best weights are loaded first, here rather than at the end of training, so a run resumed after its
    last epoch exports the best epoch too (the one its card reports)."""
    if ckpt_dir is not None:
        load_best_weights(learn, ckpt_dir)
    out = Path(out).resolve()
    with atomic_path(out) as tmp, portable(learn):
        learn.export(tmp)
    write_card(out, card)
    return out


@contextlib.contextmanager
def portable(learn: Learner) -> Iterator[Learner]:
    """The learner as it is pickled by :func:`export_learner`: fastai's own loss and metric in place of fer's
    distillation ones, and without fer's training-only augmentations (they never run at inference), so an export
    names no fer module that a later move could break; the weights, fastai's transforms and the card carry the
    rest (:data:`fer.training.predict.MOVED_MODULES` reads files exported before). Restored afterwards."""
    loss, metrics = learn.loss_func, learn.metrics
    pipelines = [(dl.after_batch, dl.after_batch.fs) for dl in learn.dls.loaders]
    affine = [(tfm, tfm.aff_fs) for _, fs in pipelines for tfm in fs if hasattr(tfm, "aff_fs")]
    if isinstance(loss, distill.DistillationLoss):
        learn.loss_func = loss.hard_loss
    learn.metrics = [accuracy]
    for pipeline, fs in pipelines:
        pipeline.fs = L(t for t in fs if not defined_in_fer(t))
    for tfm, fs in affine:
        tfm.aff_fs = L(f for f in fs if not defined_in_fer(f))
    try:
        yield learn
    finally:
        learn.loss_func, learn.metrics = loss, metrics
        for pipeline, fs in pipelines:
            pipeline.fs = fs
        for tfm, fs in affine:
            tfm.aff_fs = fs


def defined_in_fer(obj) -> bool:
    """Whether a transform (or a function, or a partial of one) is fer's own, so that pickling it names a fer module."""
    target = getattr(obj, "func", obj)
    module = target.__module__ if callable(target) and hasattr(target, "__qualname__") else type(target).__module__
    return (module or "").split(".")[0] == "fer"
