"""Shared fixtures: a tiny synthetic FER-2013 CSV, its image folder, and a tiny model trained on it
through the real command-line tools (no network, no ../shared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

ROOT = Path(__file__).resolve().parents[1]
from fer.core.labels import FER2013_CLASSES

TINY_ARCH = "mobilenetv3_small_050"
USAGES = {"Training": 8, "PublicTest": 3, "PrivateTest": 3}  # rows per class


def synthetic_face(label: int, seed: int) -> np.ndarray:
    """A 48×48 grey cartoon face whose mouth and brows depend on the label, plus noise."""
    rng = np.random.default_rng(seed)
    img = np.full((48, 48), 40, np.uint8)
    cv2.ellipse(img, (24, 25), (17, 21), 0, 0, 360, 170, -1)
    for x in (17, 31):
        cv2.circle(img, (x, 20), 2 + label % 2, 30, -1)
        cv2.line(img, (x - 4, 14 - label % 3), (x + 4, 14 + label % 3 - 1), 60, 1)
    curve = (label - 3) * 3
    cv2.ellipse(img, (24, 34), (8, max(1, abs(curve))), 0, 0 if curve >= 0 else 180, 180 if curve >= 0 else 360, 30, 2)
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def csv_lines(rows_per_class: dict[str, int] = USAGES, seed: int = 0) -> list[str]:
    lines, i = ["emotion,pixels,Usage"], 0
    for usage, n in rows_per_class.items():
        for label in range(len(FER2013_CLASSES)):
            for _ in range(n):
                pixels = " ".join(map(str, synthetic_face(label, seed + i).ravel()))
                lines.append(f"{label},{pixels},{usage}")
                i += 1
    return lines


def write_csv(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_text(newline.join(lines) + newline)
    return path


def run_cli(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path plugin has set up its factory
def pytest_configure(config) -> None:
    """Hypothesis keeps its examples and caches under pytest's temporary folder, not in the checkout (it
    writes some while collecting, before any fixture runs)."""
    set_hypothesis_home_dir(config._tmp_path_factory.getbasetemp() / "hypothesis")


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("csv") / "tiny.csv", csv_lines())


@pytest.fixture(scope="session")
def tiny_data(tiny_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "fer"
    run_cli("data_scripts/prepare_fer2013.py", "--csv", str(tiny_csv), "--out", str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory) -> Path:
    """1 epoch of a small timm model from scratch through `python -m fer.finetune` (lr finder included)."""
    work = tmp_path_factory.mktemp("model")
    out = work / "tiny.pkl"
    run_cli("-m", "fer.finetune", "--data", str(tiny_data), "--arch", TINY_ARCH, "--no-pretrained", "--size", "48",
            "--epochs", "1", "--freeze-epochs", "0", "--bs", "16", "--out", str(out), "--run-dir", str(work / "run"))
    return out


@pytest.fixture(scope="session")
def predictor(tiny_model):
    from fer.training.predict import FacePredictor

    return FacePredictor.load(tiny_model)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()
