"""What every command-line tool shares: log output, the known dependency warnings silenced, the model and
detector options, loading the model with clear errors, progress bars.

Library modules log through :mod:`logging` (``logging.getLogger(__name__)``) and never print; the tools
call :func:`configure_logging` so those messages reach the user.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fer.quiet import silence_known_warnings


def configure_logging(verbose: bool = False) -> None:
    """Send ``fer`` log messages to stdout as plain lines (debug ones too with ``verbose``) and silence the
    dependency warnings users cannot act on (:mod:`fer.quiet`)."""
    silence_known_warnings()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("fer")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


DEFAULT_MODEL_HELP = ("ONNX model (.onnx; default: the shipped exports/fer2013_effnet_lite0.onnx) or exported learner "
                      "(.pkl; needs the training install, and loading a pickle runs code from the file, so use "
                      "exports/ or your own)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model and the detector options (checked by :func:`check_model_options`)."""
    p.add_argument("--model", help=DEFAULT_MODEL_HELP)
    add_detector_options(p)


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """--detector, --min-face, --score (checked by :func:`check_model_options`)."""
    from fer.detect import DETECTORS

    p.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS,
                   help="face detector: YuNet (DNN, default) or OpenCV's Haar cascade")
    p.add_argument("--min-face", type=int, default=0, metavar="PX", help="ignore faces smaller than this (pixels)")
    p.add_argument("--score", type=float, metavar="S", help="YuNet's score threshold in (0, 1) (default 0.6)")


def check_model_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.score is not None and not 0 < args.score < 1:
        p.error(f"--score {args.score}: must be between 0 and 1")
    if args.min_face < 0:
        p.error(f"--min-face {args.min_face}: must be 0 or more")


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    """A progress bar on stderr (tqdm); with ``iterable=None``, one to advance by hand (``bar.update()``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)
