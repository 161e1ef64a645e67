"""Model cards: the JSON file beside an exported learner that says how it was trained.

Serving reads cards and training writes them; both come here, so serving never imports training code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from fer.fileio import write_json_atomic

#: The project checkout (exports/ and docs/ live here).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The shipped model as served by default: ONNX, which needs neither torch nor fastai.
DEFAULT_MODEL = PROJECT_ROOT / "exports" / "fer2013_effnet_lite0.onnx"
#: The same model as an exported fastai learner (the training install: fine-tuning from it, ``fer.bench``).
DEFAULT_LEARNER = DEFAULT_MODEL.with_suffix(".pkl")
#: The evaluation suite's PrivateTest figures of the shipped models (``python -m fer.evaluate --suite``).
SUITE_FIGURES = PROJECT_ROOT / "docs" / "suite" / "private.json"


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


def suite_figures(model_path: str | Path, figures: str | Path = SUITE_FIGURES) -> dict | None:
    """The evaluation suite's result for ``model_path`` (its ``.pkl`` or ``.onnx`` twin) from the suite's JSON
    (:data:`SUITE_FIGURES`), or None when the file does not list it."""
    figures = Path(figures)
    if not figures.is_file():
        return None
    target = Path(model_path).resolve().with_suffix("")
    for result in json.loads(figures.read_text()).values():
        listed = Path(result.get("model", ""))
        listed = listed if listed.is_absolute() else PROJECT_ROOT / listed
        if listed.resolve().with_suffix("") == target:
            return result
    return None


def describe_suite(result: dict) -> str:
    """One line of the suite's figures for users: the serving score and the plain FER-2013 accuracy."""
    cells = result["cells"]
    return (f"evaluation suite ({result['usage']}): serving score {100 * result['serving_score']:.1f} "
            f"(mean balanced accuracy on plain faces and YuNet crops, FER-2013 and FER+ labels); "
            f"FER-2013 accuracy {cells['plain']['fer2013']['accuracy']:.1%}, "
            f"on YuNet crops {cells['crops upright']['fer2013']['accuracy']:.1%}")
