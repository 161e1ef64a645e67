"""Shared bits of the command-line tools: model options, loading with clear errors, quiet warnings."""

from __future__ import annotations

import argparse
import warnings

DEFAULT_MODEL_HELP = "exported learner (.pkl; default: the shipped model); loading runs code from the file, " \
                     "so use exports/ or your own"


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model, --detector, --min-face, --score (checked by :func:`check_model_options`); the detector names
    are spelled out here so that --help needs no OpenCV."""
    p.add_argument("--model", help=DEFAULT_MODEL_HELP)
    p.add_argument("--detector", default="yunet", choices=("yunet", "haar"),
                   help="face detector: YuNet (DNN, default) or OpenCV's Haar cascade")
    p.add_argument("--min-face", type=int, default=0, metavar="PX", help="ignore faces smaller than this (pixels)")
    p.add_argument("--score", type=float, metavar="S", help="YuNet's score threshold in (0, 1) (default 0.6)")


def check_model_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.score is not None and not 0 < args.score < 1:
        p.error(f"--score {args.score}: must be between 0 and 1")
    if args.min_face < 0:
        p.error(f"--min-face {args.min_face}: must be 0 or more")


def quiet_warnings() -> None:
    """No deprecation chatter from torch/fastai on the tools' output (the model-trust note is in --help)."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*load_learner.*")


def load_model(args: argparse.Namespace):
    """:func:`fer.api.load` with the options, compiled and ready (raises :class:`fer.predict.ModelLoadError`
    naming the file when it cannot be used)."""
    quiet_warnings()
    import numpy as np

    from fer.api import load

    model = load(args.model, args.detector, args.min_face, args.score)
    model.recognizer.predictor.predict_proba([np.zeros((48, 48), np.uint8)])  # compile now, not mid-run
    return model


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    """A progress bar on stderr (tqdm)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)
