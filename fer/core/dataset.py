"""FER-2013 CSV → class-per-folder PNG tree, with row-level validation and exploration plots.

The CSV has the columns ``emotion,pixels,Usage`` (plain or gzip). Every row becomes
``OUT/<split>/<class>/<row>.png`` where ``<row>`` is the 0-based data-row index, so row *i* is
row *i* of the FER+ label file and a re-run writes exactly the same tree.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import pandas as pd

from fer.core.fileio import atomic_path, sha256, write_json_atomic
from fer.core.labels import (
    FACE_SIZE,
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    FERPLUS_COLUMNS,
    USAGE_TO_SPLIT,
)
from fer.core.plotting import pyplot

N_PIXELS = FACE_SIZE * FACE_SIZE
SPLITS = ("train", "valid", "test")
RANDOM_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train/valid/test when the CSV has no Usage column


class CsvFormatError(ValueError):
    """The CSV as a whole cannot be read (missing file or columns, empty file)."""


class BadRowError(ValueError):
    """One data row is malformed; the message names the file, the line and the problem."""

    def __init__(self, path: str | Path, line: int, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{path}, line {line}: {problem}")


@dataclass(frozen=True)
class FaceRow:
    """One row of a FER-2013 CSV: its index and line, label, usage (the split) and 48×48 pixels."""
    index: int  # 0-based data-row index (row i of ferplus_labels.csv)
    line: int  # 1-based line in the file, for messages
    label: int
    usage: str
    pixels: np.ndarray  # (48, 48) uint8


@dataclass
class ConversionReport:
    """What :func:`convert_csv` did: the folder written, the classes, the counts per split and class, the files
    written and removed, the bad rows skipped and the faces FER+ dropped."""
    out_dir: Path
    classes: tuple[str, ...]
    counts: pd.DataFrame  # split × class
    written: int = 0
    removed_stale: int = 0
    bad_rows: list[str] = field(default_factory=list)
    dropped_ferplus: int = 0
    duplicate_rows: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------- parsing

def parse_pixels(text: str) -> np.ndarray:
    """Parse 2,304 space-separated integers 0–255 into a 48×48 uint8 array; ValueError says why not."""
    tokens = text.split()
    if len(tokens) != N_PIXELS:
        raise ValueError(f"expected {N_PIXELS} pixel values, found {len(tokens)}")
    try:
        values = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        raise ValueError(first_bad_pixel(tokens)) from None
    out_of_range = (values < 0) | (values > 255)
    if out_of_range.any():
        raise ValueError(f"pixel value {values[out_of_range][0]} is outside 0-255")
    return values.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def first_bad_pixel(tokens: Sequence[str]) -> str:
    """What is wrong with the first unusable token (one that numpy could not read as an int64)."""
    for token in tokens:
        if not re.fullmatch(r"[+-]?[0-9]+", token):
            return f"pixel value {token!r} is not an integer"
        if not 0 <= int(token) <= 255:
            return f"pixel value {token} is outside 0-255"
    return "pixel values could not be read as integers"


def parse_label(text: str, n_classes: int = len(FER2013_CLASSES)) -> int:
    """Parse the ``emotion`` field: an integer label in ``0 .. n_classes-1``."""
    try:
        label = int(text.strip())
    except ValueError:
        raise ValueError(f"emotion {text!r} is not an integer label 0-{n_classes - 1}") from None
    if not 0 <= label < n_classes:
        raise ValueError(f"unknown emotion {label} (expected 0-{n_classes - 1})")
    return label


def parse_usage(text: str) -> str:
    """The ``Usage`` column's value (Training, PublicTest or PrivateTest); ``ValueError`` for any other."""
    usage = text.strip()
    if usage not in USAGE_TO_SPLIT:
        raise ValueError(f"unknown Usage {usage!r} (expected one of {', '.join(USAGE_TO_SPLIT)})")
    return usage


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a CSV as text whether plain or gzip (by content, not name); strips a UTF-8 BOM."""
    path = Path(path)
    if not path.is_file():
        raise CsvFormatError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(2)
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_rows(path: str | Path, skip_bad_rows: bool = False, bad_rows: list[str] | None = None,
              random_split: bool = False, seed: int = 0) -> Iterator[FaceRow]:
    """Yield validated rows. A bad row raises BadRowError, or with ``skip_bad_rows`` is recorded
    in ``bad_rows`` and skipped. Without a Usage column, ``random_split`` assigns a seeded
    80/10/10 split; otherwise that is an error."""
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CsvFormatError(f"{path}: the file is empty (expected a header emotion,pixels,Usage)") from None
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError) as e:
            raise CsvFormatError(f"{path}: not a readable CSV ({e})") from None
        missing = [c for c in ("emotion", "pixels") if c not in header]
        if missing:
            raise CsvFormatError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
        has_usage = "Usage" in header
        if not has_usage and not random_split:
            raise CsvFormatError(f"{path}: missing column Usage; pass --random-split for a seeded "
                                 "80/10/10 train/valid/test split")
        col = {name: header.index(name) for name in ("emotion", "pixels", "Usage") if name in header}
        rng = np.random.default_rng(seed)
        index = -1
        try:
            for fields in reader:
                if not fields or fields == [""]:
                    continue  # blank line, e.g. a trailing newline
                index += 1
                line = reader.line_num
                try:
                    if len(fields) < len(header):
                        raise ValueError(f"expected {len(header)} columns, found {len(fields)}")
                    label = parse_label(fields[col["emotion"]])
                    if has_usage:
                        usage = parse_usage(fields[col["Usage"]])
                    else:
                        usage = list(USAGE_TO_SPLIT)[rng.choice(3, p=RANDOM_SPLIT_FRACTIONS)]
                    pixels = parse_pixels(fields[col["pixels"]])
                except ValueError as e:
                    if not skip_bad_rows:
                        raise BadRowError(path, line, str(e)) from None
                    if bad_rows is not None:
                        bad_rows.append(str(BadRowError(path, line, str(e))))
                    continue
                yield FaceRow(index, line, label, usage, pixels)
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as e:
            raise CsvFormatError(f"{path}, line {reader.line_num}: not a readable CSV ({e})") from None
        if index < 0:
            raise CsvFormatError(f"{path}: no data rows after the header")


def ferplus_majority(path: str | Path) -> list[str | None]:
    """FER+ majority vote per row, as our class names; None where the majority is unknown/NF
    or the row is not a face. Ties go to the first column in the file's order."""
    votes = pd.read_csv(path)
    missing = [c for c in [*FERPLUS_COLUMNS, "unknown", "NF"] if c not in votes.columns]
    if missing:
        raise CsvFormatError(f"{path}: missing FER+ column(s) {', '.join(missing)}")
    vote_cols = [*FERPLUS_COLUMNS, "unknown", "NF"]
    winners = votes[vote_cols].to_numpy().argmax(axis=1)
    names = [FERPLUS_COLUMNS.get(vote_cols[w]) for w in winners]
    no_face = votes["Image name"].isna().to_numpy() if "Image name" in votes.columns else np.zeros(len(votes), bool)
    return [None if nf else n for n, nf in zip(names, no_face)]


def ferplus_vote_shares(path: str | Path, classes: Sequence[str]) -> np.ndarray:
    """Each row's FER+ votes for ``classes`` (our names), as shares summing to 1: ``(rows, len(classes))``
    float32. Votes for other columns (contempt when not in ``classes``, unknown, not a face) are left out; a
    row with no vote for any of ``classes``, or that FER+ marks as not a face (no image name), is all zeros."""
    votes = pd.read_csv(path)
    column = {ours: theirs for theirs, ours in FERPLUS_COLUMNS.items()}
    missing = [c for c in classes if column.get(c) not in votes.columns]
    if missing:
        raise CsvFormatError(f"{path}: no FER+ vote column for class(es) {', '.join(missing)}")
    counts = votes[[column[c] for c in classes]].to_numpy(np.float32)
    if "Image name" in votes.columns:
        counts[votes["Image name"].isna().to_numpy()] = 0
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


# --------------------------------------------------------------------------- writing

def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """Write a lossless PNG through a temporary file and a rename: never a half-written file."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def _progress(items: Sequence, enabled: bool, total: int | None = None):
    if not enabled:
        return items
    from fastprogress.fastprogress import progress_bar
    return progress_bar(items, total=total)


def convert_csv(csv_path: str | Path, out_dir: str | Path, labels: str = "fer2013",
                ferplus_path: str | Path | None = None, skip_bad_rows: bool = False,
                random_split: bool = False, progress: bool = True) -> ConversionReport:
    """Convert a FER-2013 CSV to ``out_dir/<split>/<class>/<row>.png``.

    All rows are read and validated before anything is written, so a bad file leaves an existing
    folder untouched. Re-running gives the same folder: files are named by row, written
    atomically, and files that do not belong (stale labels, interrupted writes) are removed.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if labels not in ("fer2013", "ferplus"):
        raise ValueError(f"labels must be 'fer2013' or 'ferplus', not {labels!r}")
    classes = FER2013_CLASSES if labels == "fer2013" else FERPLUS_CLASSES
    majority = None
    if labels == "ferplus":
        if ferplus_path is None:
            raise CsvFormatError("--labels ferplus needs --ferplus PATH (ferplus_labels.csv)")
        majority = ferplus_majority(ferplus_path)

    bad_rows: list[str] = []
    rows = list(read_rows(csv_path, skip_bad_rows, bad_rows, random_split))
    if not rows:
        raise CsvFormatError(f"{csv_path}: no valid rows ({len(bad_rows)} bad rows skipped)")
    if majority is not None and rows[-1].index >= len(majority):
        raise CsvFormatError(f"{ferplus_path}: has {len(majority)} rows but {csv_path} has at least "
                             f"{rows[-1].index + 1}; the two files must be row-aligned")

    targets: dict[Path, np.ndarray] = {}
    dropped = 0
    for row in rows:
        name = FER2013_CLASSES[row.label] if majority is None else majority[row.index]
        if name is None:
            dropped += 1
            continue
        targets[out_dir / USAGE_TO_SPLIT[row.usage] / name / f"{row.index}.png"] = row.pixels

    for split in SPLITS:
        for name in classes:
            (out_dir / split / name).mkdir(parents=True, exist_ok=True)
    for path, pixels in _progress(list(targets.items()), progress):
        write_png_atomic(path, pixels)
    removed = remove_stale_files(out_dir, set(targets))

    write_source_info(out_dir, csv_path, labels)
    duplicates = len(rows) - len({r.pixels.tobytes() for r in rows})
    report = ConversionReport(out_dir, classes, folder_counts(out_dir, classes), written=len(targets),
                              removed_stale=removed, bad_rows=bad_rows, dropped_ferplus=dropped,
                              duplicate_rows=duplicates)
    report.seconds = time.perf_counter() - start
    return report


SOURCE_INFO = "source.json"


def write_source_info(out_dir: Path, csv_path: str | Path, labels: str) -> None:
    """Record which CSV (and its sha256) the folder was made from, for model cards."""
    write_json_atomic(out_dir / SOURCE_INFO, {"csv": Path(csv_path).name, "sha256": sha256(csv_path), "labels": labels})


def remove_stale_files(out_dir: Path, keep: set[Path]) -> int:
    """Delete files under the split folders that this conversion did not write (and empty folders)."""
    removed = 0
    for split in SPLITS:
        root = out_dir / split
        for path in sorted(root.rglob("*"), reverse=True):
            if path.is_file() and path not in keep:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return removed


# --------------------------------------------------------------------------- exploration

def folder_counts(data_dir: str | Path, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Images per split (rows) and class (columns) in a ``split/class/*.png`` tree."""
    data_dir = Path(data_dir)
    counts = {split: Counter(p.parent.name for p in (data_dir / split).glob("*/*.png")) for split in SPLITS}
    if classes is None:
        classes = sorted({c for counter in counts.values() for c in counter})
    table = pd.DataFrame([[counts[s][c] for c in classes] for s in SPLITS], index=list(SPLITS), columns=list(classes))
    return table


def plot_class_counts(counts: pd.DataFrame, path: str | Path) -> Path:
    """Grouped bar chart of images per class and split."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(9, 4))
    counts.T.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("images")
    ax.set_title("Images per class and split")
    for container in ax.containers:
        ax.bar_label(container, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_sample_grid(data_dir: str | Path, path: str | Path, per_class: int = 8, split: str = "train",
                     seed: int = 0) -> Path:
    """A grid of random sample faces: one row per class."""
    plt = pyplot()

    data_dir = Path(data_dir)
    classes = sorted(p.name for p in (data_dir / split).iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 1.1, len(classes) * 1.2), squeeze=False)
    for r, name in enumerate(classes):
        files = sorted((data_dir / split / name).glob("*.png"))
        picks = rng.choice(len(files), size=min(per_class, len(files)), replace=False) if files else []
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(picks):
                ax.imshow(cv2.imread(str(files[picks[c]]), cv2.IMREAD_GRAYSCALE), cmap="gray", vmin=0, vmax=255)
        axes[r][0].set_title(name, loc="left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def explore(data_dir: str | Path, classes: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """Count images per split and class; write ``class_counts.png``, ``samples.png`` and
    ``counts.csv`` next to the data. Returns the table and the files written."""
    data_dir = Path(data_dir)
    counts = folder_counts(data_dir, classes)
    counts.to_csv(data_dir / "counts.csv")
    files = [plot_class_counts(counts, data_dir / "class_counts.png"), plot_sample_grid(data_dir, data_dir / "samples.png")]
    return counts, [data_dir / "counts.csv", *files]
