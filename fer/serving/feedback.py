"""A user's corrections: the classifier's input (the grey 48×48 face) saved under the label the user chose.

The folder has a training folder's layout, ``DIR/<class>/<id>.png``, so a user can also drop labelled face
photos into it, plus ``DIR/manifest.csv``: one row per correction saved from the app (time, file, label,
the tab it came from, the model, its predicted label and probabilities). ``python -m fer.personalize
--feedback DIR`` turns the folder into a personal model. Serving code: numpy, OpenCV and the standard
library only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import io
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from fer.core.fileio import write_bytes_atomic
from fer.core.images import IMAGE_SUFFIXES
from fer.core.labels import FACE_SIZE
from fer.serving.faces import to_face

MANIFEST = "manifest.csv"
#: The manifest's fixed columns; one ``p_<class>`` column per class of the model follows.
MANIFEST_COLUMNS = ("time", "file", "label", "source", "model", "predicted")
#: The record of deletions and model switches (time, who, what), kept when the corrections are deleted.
ACTIONS_LOG = "actions.log"
#: The lock file every process saving to or deleting from the folder takes (two apps may share one folder).
LOCK_FILE = ".lock"
#: What a model name in a correction may look like: a file name (letters, digits, ``._-()`` and spaces).
MODEL_NAME = re.compile(r"[\w][\w .()+-]{0,199}")
#: Characters that make a spreadsheet read a cell as a formula when they start it.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_LOCK = threading.Lock()  # the app saves from several request threads


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: this process's threads one at a time, and other processes (another app on the
    same folder) through an ``flock`` on ``DIR/.lock`` where the system has it."""
    with _LOCK:
        try:
            import fcntl
        except ImportError:  # Windows: one app per folder
            yield
            return
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class FeedbackError(ValueError):
    """A correction cannot be saved or the folder cannot be used; the message names the problem."""


def save_correction(folder: str | Path, face: np.ndarray, label: str, source: str, model: str,
                    predicted: str, probs: Mapping[str, float], classes: Sequence[str],
                    max_corrections: int | None = None) -> Path:
    """Save one correction: ``face`` (a grey or RGB crop, brought to the classifier's 48×48 grey input) as
    ``folder/<label>/<id>.png`` and a manifest row (``source``: the app's tab, ``model``: the model file's
    name, ``predicted`` and ``probs``: what the model said). Returns the image's path. FeedbackError when the
    folder already holds ``max_corrections`` images."""
    if label not in classes:
        raise FeedbackError(f"label {label!r} is not one of the model's classes ({', '.join(classes)})")
    folder = Path(folder)
    image = to_face(np.asarray(face))
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise FeedbackError(f"could not encode a {image.shape} face as PNG")
    now = time.time()
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + f"-{uuid.uuid4().hex[:8]}.png"
    path = folder / label / name
    row = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "file": f"{label}/{name}",
           "label": label, "source": source, "model": model, "predicted": predicted,
           **{f"p_{c}": f"{float(probs.get(c, 0.0)):.4f}" for c in classes}}
    with folder_lock(folder):
        if max_corrections is not None and (held := sum(count_corrections(folder).values())) >= max_corrections:
            raise FeedbackError(f"the folder holds {held} corrections, the most this app keeps; train a personal "
                                f"model from them, then delete them")
        write_bytes_atomic(path, png.tobytes())
        append_manifest(folder / MANIFEST, row)
    return path


@dataclass(frozen=True)
class Correction:
    """One correction sent by the page's live view (:func:`parse_correction`)."""

    face: np.ndarray  # (48, 48) uint8: the classifier's input
    label: str  # the expression the user picked
    predicted: str  # what the model said
    probs: dict[str, float]  # the probabilities the page showed, per class
    model: str  # the model file the page ran


def parse_correction(payload: object, classes: Sequence[str]) -> Correction:
    """A correction from the live view's JSON: ``face`` (base64 of the 48×48 grey face, row-major bytes),
    ``label``, ``probs`` (one per class, in ``classes`` order, or class → probability), ``predicted``
    (optional: the most probable class) and ``model`` (the model file's name). FeedbackError naming the
    first problem."""
    if not isinstance(payload, dict):
        raise FeedbackError("a correction is a JSON object")
    try:
        raw = base64.b64decode(str(payload.get("face", "")), validate=True)
    except (binascii.Error, ValueError):
        raise FeedbackError("face: not base64") from None
    if len(raw) != FACE_SIZE * FACE_SIZE:
        raise FeedbackError(f"face: {len(raw)} bytes, expected {FACE_SIZE * FACE_SIZE} (a {FACE_SIZE}×{FACE_SIZE} grey face)")
    label = payload.get("label")
    if label not in classes:
        raise FeedbackError(f"label {label!r} is not one of the model's classes ({', '.join(classes)})")
    given = payload.get("probs")
    if isinstance(given, list) and len(given) == len(classes):
        given = dict(zip(classes, given))
    if not isinstance(given, dict) or set(given) != set(classes):
        raise FeedbackError(f"probs: expected one probability per class ({', '.join(classes)})")
    if not all(type(given[c]) in (int, float) for c in classes):  # not strings, booleans, lists...
        raise FeedbackError("probs: each must be a number")
    try:
        probs = {c: float(given[c]) for c in classes}
    except OverflowError:  # an integer too large for a float
        raise FeedbackError("probs: each must lie between 0 and 1") from None
    if not all(math.isfinite(p) and 0 <= p <= 1 for p in probs.values()):
        raise FeedbackError("probs: each must lie between 0 and 1")
    predicted = payload.get("predicted") or max(probs, key=probs.get)
    if predicted not in classes:
        raise FeedbackError(f"predicted {predicted!r} is not one of the model's classes")
    model = payload.get("model")
    if not isinstance(model, str) or not MODEL_NAME.fullmatch(model.strip()):
        raise FeedbackError("model: the model file's name (letters, digits, spaces and ._-()+, up to 200 "
                            "characters, starting with a letter or digit)")
    face = np.frombuffer(raw, np.uint8).reshape(FACE_SIZE, FACE_SIZE).copy()
    return Correction(face, label, predicted, probs, model.strip())


def inert_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula (``=``, ``+``, ``-``, ``@``) gets a
    leading ``'``."""
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def append_manifest(path: Path, row: dict[str, str]) -> None:
    """Add ``row`` to the manifest CSV (each cell :func:`inert_cell`), writing the header first when the file is
    new."""
    new = not path.exists() or path.stat().st_size == 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(row), lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerow({k: inert_cell(v) for k, v in row.items()})
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def read_manifest(folder: str | Path) -> list[dict[str, str]]:
    """The manifest's rows (empty when there is none); FeedbackError naming the file when it is not UTF-8 CSV."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise FeedbackError(f"{path}: not a UTF-8 CSV manifest ({e}); fix or remove it") from None


def correction_files(folder: str | Path) -> dict[str, list[Path]]:
    """Image files per class folder (``DIR/<class>/*``), hidden folders and files left out."""
    folder = Path(folder)
    found = {}
    for sub in sorted(_entries(folder, Path.is_dir)):
        files = sorted(_entries(sub, lambda f: f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        if files:
            found[sub.name] = files
    return found


def _entries(folder: Path, keep) -> list[Path]:
    """The entries of ``folder`` that ``keep`` accepts, hidden ones left out; none when the folder is gone (another
    app sharing it may delete it meanwhile)."""
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".") and keep(p)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def count_corrections(folder: str | Path) -> dict[str, int]:
    """How many images each class folder holds (corrections and photos dropped in)."""
    return {name: len(files) for name, files in correction_files(folder).items()}


def delete_all(folder: str | Path) -> int:
    """Delete every correction: the class folders' images (and the folders when they end up empty) and the
    manifest. Personal models (``*.onnx``, ``*.json``) in the folder stay. Returns how many images went."""
    folder = Path(folder)
    removed = 0
    with folder_lock(folder):
        for name, files in correction_files(folder).items():
            for f in files:
                f.unlink(missing_ok=True)
                removed += 1
            with contextlib.suppress(OSError):  # not empty (other files were put there), or gone
                (folder / name).rmdir()
        (folder / MANIFEST).unlink(missing_ok=True)
    return removed


def record_action(folder: str | Path, who: str, action: str) -> str:
    """Add a line to the folder's record of deletions and model switches (``DIR/actions.log``: UTC time, who,
    what); returns the line."""
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\t{who}\t{action}"
    line = "".join(c if c.isprintable() or c == "\t" else "?" for c in line)
    with folder_lock(Path(folder)), open(Path(folder) / ACTIONS_LOG, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


def manifest_rows(folder: str | Path) -> int:
    """How many rows the manifest has (0 without one); FeedbackError naming it when it is not UTF-8 text."""
    return len(read_manifest(folder))


def personal_models(folder: str | Path) -> list[Path]:
    """The ONNX models in the folder (``python -m fer.personalize --out DIR/NAME`` puts them there), newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)


def summary(folder: str | Path) -> str:
    """One line for users: where corrections go (the folder's name: its full path is for the operator, not
    the page) and how many there are per class."""
    counts = count_corrections(folder)
    total = sum(counts.values())
    where = Path(folder).resolve().name
    if not total:
        return f"Corrections are saved in `{where}`: none yet."
    per_class = ", ".join(f"{name} {n}" for name, n in counts.items())
    return f"Corrections are saved in `{where}`: **{total}** ({per_class})."


def check_folder(folder: str | Path) -> Path:
    """Make the feedback folder (and its parents) if needed; FeedbackError when it cannot be written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FeedbackError(f"--feedback {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise FeedbackError(f"--feedback {folder}: cannot write there ({e.strerror or e})") from None
    return folder


__all__ = ["MANIFEST", "Correction", "FeedbackError", "check_folder", "correction_files", "count_corrections",
           "delete_all", "manifest_rows", "parse_correction", "personal_models", "read_manifest", "record_action",
           "save_correction", "summary"]
