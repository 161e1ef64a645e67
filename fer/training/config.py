"""What a training or personalisation run is asked to do: the options of ``python -m fer.finetune`` and
``python -m fer.personalize`` as dataclasses, checked without torch (so ``--help`` and bad options answer at once).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fer.core.card import DEFAULT_LEARNER
from fer.core.labels import CLASS_ORDERS

DEFAULT_DISTILL_WEIGHT = 0.7


#: ``--ferplus-weight``: the share of the loss that goes to the FER+ crowd's vote distribution.
DEFAULT_FERPLUS_WEIGHT = 0.5


#: ``--precision``: ``auto`` is bf16/fp16 mixed precision on a CUDA GPU, fp32 on the CPU (:mod:`fer.training.distributed`).
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


#: ``--teacher-view``: the student's augmented batch, or the clean image labelled once before training
TEACHER_VIEWS = ("augmented", "clean")


def parse_fold(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` → ``(K, N)`` (fold K of N held out); ValueError naming the problem."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"--fold {text}: expected K/N, e.g. 0/3")
    k, n = map(int, match.groups())
    if n < 2 or not 0 <= k < n:
        raise ValueError(f"--fold {text}: need N >= 2 and 0 <= K < N")
    return k, n


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, applied per batch on the device (fastai ``batch_tfms``; never at inference).

    The defaults are the shipped model's first recipe (flip, rotate, zoom in, warp, brightness/contrast);
    :data:`AUGMENT_PRESETS` names stronger ones. Sizes are fractions of the face, angles degrees.
    """

    flip: bool = True
    rotate: float = 15.0  #: largest rotation, either way
    scale: tuple[float, float] = (1.0, 1.15)  #: zoom range: above 1 crops in, below 1 shows more around the face
    translate: float = 0.0  #: largest shift, as a fraction of the face's width, in x and y
    warp: float = 0.15  #: perspective warp (fastai's max_warp)
    p_affine: float = 0.75  #: probability of each geometric change
    lighting: float = 0.3  #: brightness and contrast (fastai's max_lighting)
    gamma: float = 0.0  #: largest |log gamma|: 0.3 → gamma in [0.74, 1.35]
    blur: float = 0.0  #: probability of a Gaussian blur (sigma 0.4–1.2 px at 48 px)
    jpeg: float = 0.0  #: probability of JPEG compression artefacts (8×8 DCT quantisation, quality 15–75)
    erasing: float = 0.0  #: probability of erasing a random rectangle (2–20% of the face) with noise

    def __post_init__(self):
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"augment scale {self.scale}: need 0 < min <= max")
        for name in ("rotate", "translate", "warp", "lighting", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment {name} {getattr(self, name)}: must be >= 0")
        for name in ("p_affine", "blur", "jpeg", "erasing"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"augment {name} {getattr(self, name)}: a probability, in [0, 1]")

    def to_dict(self) -> dict:
        """The settings as JSON-ready values (for the model card)."""
        return {**asdict(self), "scale": list(self.scale)}


#: Named augmentation recipes (``python -m fer.finetune --augment NAME``); ``none`` only resizes.
AUGMENT_PRESETS = {
    "default": Augment(),
    # detector crops vary in framing, webcams in exposure and sharpness
    "strong": Augment(rotate=20.0, scale=(0.85, 1.2), translate=0.08, gamma=0.3, blur=0.2, jpeg=0.2, erasing=0.25),
}


@dataclass
class TrainingConfig:
    """One training run; the fields are ``python -m fer.finetune``'s options (see its ``--help``)."""

    data: str
    arch: str = "tf_efficientnet_lite0"
    weights: str | None = None
    no_pretrained: bool = False
    size: int = 80
    epochs: int = 25
    freeze_epochs: int = 1
    bs: int = 64
    lr: float | None = None
    lr_mult: float = 5.0
    label_smoothing: float = 0.1
    mixup: float = 0.0
    init_from: str | None = None
    teacher: list[str] = field(default_factory=list)
    distill_weight: float | None = None
    teacher_view: str = "augmented"
    ferplus: str | None = None  # FER+ vote file: soft targets mixed with the FER-2013 label
    ferplus_weight: float = DEFAULT_FERPLUS_WEIGHT
    no_augment: bool = False
    augment: str = "default"
    aug: list[str] = field(default_factory=list)  # KEY=VALUE overrides of the augment preset
    fold: str | None = None  # "K/N": train without fold K of N (a cross-fitted teacher)
    class_weight: float = 0.0
    ema: float = 0.0
    workers: int = 0
    class_order: str | None = None
    out: str = "runs/fer_model.pkl"
    run_dir: str | None = None
    resume: bool = False
    seed: int = 42
    precision: str = "auto"  # after set_up: the one in use
    command: str = ""  # how the run was started, for the card

    def check(self) -> None:
        """Errors that need no data or model: ValueError naming the option."""
        if self.distill_weight is not None and not self.teacher:
            raise ValueError("--distill-weight needs at least one --teacher")
        if self.teacher and self.distill_weight is not None and not 0 < self.distill_weight <= 1:
            raise ValueError(f"--distill-weight {self.distill_weight}: must be in (0, 1]")

        if self.teacher_view not in TEACHER_VIEWS:
            raise ValueError(f"--teacher-view {self.teacher_view}: choose one of {', '.join(TEACHER_VIEWS)}")
        if self.ferplus and (self.teacher or self.mixup):
            raise ValueError("--ferplus cannot be combined with --teacher or --mixup (one soft label per image)")
        if not 0 < self.ferplus_weight <= 1:
            raise ValueError(f"--ferplus-weight {self.ferplus_weight}: must be in (0, 1]")
        if self.ferplus and not Path(self.ferplus).is_file():
            raise FileNotFoundError(f"--ferplus {self.ferplus}: no such file (ferplus_labels.csv)")
        if self.teacher and self.mixup:
            raise ValueError("--teacher and --mixup cannot be combined (the soft labels are per image)")
        if self.class_order and self.init_from:
            raise ValueError("--class-order: a run with --init-from keeps the classes of the learner it starts from")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}")
        if self.class_order not in (None, *CLASS_ORDERS):
            raise ValueError(f"--class-order {self.class_order}: choose one of {', '.join(CLASS_ORDERS)}")
        if self.ema and not 0 < self.ema < 1:
            raise ValueError(f"--ema {self.ema}: a decay per step, in (0, 1), e.g. 0.999")
        if self.class_weight < 0:
            raise ValueError(f"--class-weight {self.class_weight}: must be >= 0")

        parse_fold(self.fold)
        _ = self.augmentation  # a bad preset or override raises here, before any data is read
        for name, least in {"epochs": 0, "freeze_epochs": 0, "bs": 1, "size": 1, "workers": 0}.items():
            if getattr(self, name) < least:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least {least}")

    @property
    def augmentation(self):
        """The :class:`fer.training.preprocess.Augment` of ``augment`` with the ``aug`` overrides (None: no augmentation)."""
        return parse_augment("none" if self.no_augment else self.augment, self.aug)

    @property
    def run_folder(self) -> Path:
        """Checkpoints, logs and plots: ``run_dir``, or ``runs/<out name>``."""
        return Path(self.run_dir or Path("runs") / Path(self.out).stem)

    @property
    def soft_label_weight(self) -> float:
        """The weight of the soft-label loss: the teachers' (distillation) or the FER+ votes' (0 without either)."""
        if self.ferplus:
            return self.ferplus_weight
        if not self.teacher:
            return 0.0
        return DEFAULT_DISTILL_WEIGHT if self.distill_weight is None else self.distill_weight


def parse_augment(preset: str, overrides: list[str]):
    """``--augment PRESET`` with ``--aug KEY=VALUE`` overrides → a :class:`fer.training.preprocess.Augment`, or None for
    ``none``; ValueError naming a bad preset, key or value."""

    if preset == "none":
        if overrides:
            raise ValueError("--aug: nothing to override with --augment none (or --no-augment)")
        return None
    if preset not in AUGMENT_PRESETS:
        raise ValueError(f"--augment {preset}: choose one of none, {', '.join(AUGMENT_PRESETS)}")
    fields = {f.name: f for f in dataclasses.fields(Augment)}
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ValueError(f"--aug {item}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
        try:
            if key == "scale":
                lo, hi = (float(v) for v in value.split(","))
                changes[key] = (lo, hi)
            elif key == "flip":
                changes[key] = {"true": True, "1": True, "false": False, "0": False}[value.strip().lower()]
            else:
                changes[key] = float(value)
        except (ValueError, KeyError):
            raise ValueError(f"--aug {item}: bad value (scale=MIN,MAX; flip=true|false; others a number)") from None
    return dataclasses.replace(AUGMENT_PRESETS[preset], **changes)


#: ``--anchor``'s default with replayed faces (``--data``): they also hold the head near the base, so the pull on
#: its weights can be weaker (chosen on PublicTest by the rule in docs/personalize_v4_agreed.md).
ANCHOR_WITH_REPLAY = 0.25
#: ``--anchor``'s default without replayed faces: the pull is all that keeps the head near the base.
ANCHOR_WITHOUT_REPLAY = 1.0


@dataclass
class PersonalizeConfig:
    """One personalisation; the fields are ``python -m fer.personalize``'s options."""

    feedback: str
    out: str
    base: str = str(DEFAULT_LEARNER)
    data: str | None = None  # replay: FER-2013 CSV or image folder with train/
    replay: int = 2000  # replayed training faces (with --data)
    eval: str | None = None  # FER-2013 CSV whose PublicTest rows measure before/after (default: --data if a CSV)
    ferplus: str | None = None  # FER+ votes file: also measure on PublicTest's FER+ majority labels
    suite: bool = False  # also run fer.evaluation.suite (plain faces and YuNet crops, both label sets) before and after
    suite_cache: str | None = None  # where fer.evaluation.suite keeps its faces between runs
    views: int = 8  # augmented views of each correction
    steps: int = 300
    lr: float = 1e-3
    replay_weight: float = 1.0
    # L2 pull of the head's weights towards the base's (per weight, summed, × this); None: ANCHOR_WITH_REPLAY
    # when faces are replayed (--data and --replay > 0), ANCHOR_WITHOUT_REPLAY otherwise
    anchor: float | None = None
    seed: int = 0
    command: str = ""

    def __post_init__(self) -> None:
        if self.anchor is None:
            self.anchor = ANCHOR_WITH_REPLAY if self.data and self.replay else ANCHOR_WITHOUT_REPLAY

    def check(self) -> None:
        """``ValueError`` naming the option when a count or weight is out of range."""
        for name, least in {"views": 1, "steps": 1, "replay": 0}.items():
            if getattr(self, name) < least:
                raise ValueError(f"--{name} {getattr(self, name)}: must be at least {least}")
        for name in ("lr", "replay_weight", "anchor"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 0")

    @property
    def onnx_path(self) -> Path:
        """``--out`` as the ONNX file to write (``NAME`` or ``NAME.onnx``)."""
        out = Path(self.out)
        return out if out.suffix.lower() == ".onnx" else out.with_name(out.name + ".onnx")
