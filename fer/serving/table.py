"""Faces as table rows: the columns the CSV files of ``fer.analyze`` and ``fer.video`` share."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from fer.serving.detect import LANDMARK_NAMES, Box

BOX_COLUMNS = ("x", "y", "w", "h", "score")
LANDMARK_COLUMNS = tuple(f"{name}_{axis}" for name in LANDMARK_NAMES for axis in ("x", "y"))


def face_columns(classes: Sequence[str]) -> list[str]:
    """Box, detector score, landmarks (x, y per point), one probability per class, label."""
    return [*BOX_COLUMNS, *LANDMARK_COLUMNS, *classes, "label"]


def face_row(box: Box, probs: Mapping[str, float]) -> dict:
    """One face as a row for :func:`face_columns` (empty landmark and score cells when the detector has none)."""
    row: dict = {"x": box.x, "y": box.y, "w": box.w, "h": box.h,
                 "score": "" if box.score is None else round(box.score, 4)}
    points = [round(v, 1) for point in box.landmarks for v in point]
    row.update(zip(LANDMARK_COLUMNS, points or [""] * len(LANDMARK_COLUMNS)))
    row.update({c: round(float(p), 5) for c, p in probs.items()})
    row["label"] = max(probs, key=probs.get)
    return row


class CsvTable:
    """Rows appended to a CSV file as they come, flushed each time, so an interrupted run keeps them."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w", newline="")  # noqa: SIM115 - open for the whole run, closed by close()
        self.writer = csv.DictWriter(self.file, list(columns))
        self.writer.writeheader()

    def add(self, rows: list[dict]) -> None:
        """Append ``rows`` and flush them to disk."""
        self.writer.writerows(rows)
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()
