"""Model cards: the JSON file beside an exported learner that says how it was trained.

Serving reads cards and training writes them; both come here, so serving never imports training code.
"""

from __future__ import annotations

import json
import os
import time
from importlib.resources import files
from pathlib import Path
from typing import Sequence

from fer.core.fileio import write_json_atomic

#: The models shipped inside the package (fer/models/: one folder per model, with its card or README and licence).
MODELS = Path(os.fspath(files("fer") / "models"))
#: The shipped expression model as served by default: ONNX, which needs neither torch nor fastai.
DEFAULT_MODEL = MODELS / "fer2013_effnet_lite0" / "fer2013_effnet_lite0.onnx"
#: The environment variable that names another model for every command, the app and :func:`fer.load`.
MODEL_ENV = "FER_MODEL"
#: A checkout's root (exports/ and docs/ live there; an installed wheel has neither).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The shipped model as an exported fastai learner: a training artefact in a checkout's exports/ (fine-tuning
#: from it with ``--init-from``, ``fer.personalize --base``, ``fer.bench``), not in the wheel.
DEFAULT_LEARNER = PROJECT_ROOT / "exports" / "fer2013_effnet_lite0.pkl"


def default_model() -> Path:
    """The model used when none is named: ``$FER_MODEL`` when set, else the packaged :data:`DEFAULT_MODEL`."""
    return Path(os.environ[MODEL_ENV]) if os.environ.get(MODEL_ENV) else DEFAULT_MODEL


class ModelLoadError(RuntimeError):
    """The model file is missing, truncated or not a model; the message names the path."""


def card_path(model_path: str | Path) -> Path:
    """The card of a model file: the same name with ``.json``."""
    return Path(model_path).with_suffix(".json")


def load_card(model_path: str | Path) -> dict:
    """The card of ``model_path``, or ``{}`` when it has none."""
    path = card_path(model_path)
    return json.loads(path.read_text()) if path.exists() else {}


def write_card(model_path: str | Path, card: dict) -> Path:
    """Write ``card`` beside ``model_path`` atomically; returns the card's path."""
    path = card_path(model_path)
    write_json_atomic(path, card)
    return path


def card_temperature(card: dict) -> float:
    """The calibration temperature a card records (``calibration.temperature``, written by ``python -m
    fer.evaluate --calibrate``); 1 when it records none."""
    return float((card.get("calibration") or {}).get("temperature", 1.0))


def timestamp() -> str:
    """Now, in UTC, as ISO 8601 (``2026-11-21T21:24:40Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def describe_card(card: dict, classes: Sequence[str]) -> str:
    """One line about a model for users: architecture, input size and accuracy from its card."""
    if not card:
        return f"{len(classes)} classes: {', '.join(classes)}"
    acc = card.get("valid_accuracy")
    if "personalized" in card:  # python -m fer.personalize
        info = card["personalized"]
        return (f"{card.get('arch', '?')} at {card.get('input_size', '?')} px, personalised from {info.get('base', '?')} "
                f"with {sum(info.get('corrections', {}).values())} corrections")
    return (f"{card.get('arch', '?')} at {card.get('input_size', '?')} px, "
            + (f"{acc:.1%} accuracy on FER-2013 PublicTest (valid)" if acc else "accuracy unknown"))


def suite_path(model_path: str | Path) -> Path:
    """Where a model's evaluation-suite figures lie: ``MODEL.suite.json`` beside it (``python -m fer.evaluate
    --suite --usage PrivateTest --beside``), so they travel with the model, into the wheel too."""
    return Path(model_path).with_suffix(".suite.json")


def suite_figures(model_path: str | Path) -> dict | None:
    """The evaluation suite's result for ``model_path`` (its ``.pkl`` or ``.onnx`` twin, the file beside it:
    :func:`suite_path`), or None when it has none."""
    path = suite_path(Path(model_path).with_suffix(".onnx").resolve())
    return json.loads(path.read_text()) if path.is_file() else None


def write_suite_figures(model_path: str | Path, result: dict) -> Path:
    """Write the suite's ``result`` for ``model_path`` beside it (where :func:`suite_figures` reads it)."""
    path = suite_path(Path(model_path).with_suffix(".onnx").resolve())
    write_json_atomic(path, result)
    return path


def describe_suite(result: dict) -> str:
    """One line of the suite's figures for users: the serving score and the plain FER-2013 accuracy."""
    cells = result["cells"]
    return (f"evaluation suite ({result['usage']}): serving score {100 * result['serving_score']:.1f} "
            f"(mean balanced accuracy on plain faces and YuNet crops, FER-2013 and FER+ labels); "
            f"FER-2013 accuracy {cells['plain']['fer2013']['accuracy']:.1%}, "
            f"on YuNet crops {cells['crops upright']['fer2013']['accuracy']:.1%}")
